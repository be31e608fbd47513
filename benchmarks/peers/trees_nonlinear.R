# R mice on the trees' non-linear replications (written by benchmarks/trees.py).
# Usage: Rscript trees_nonlinear.R DIR m maxit methods OUT.csv
#   DIR: rep_<r>.csv files (columns x, z, y; missing as NA), r = the replication and seed;
#   methods: comma list of mice methods for y (e.g. pmm,cart,rf), each with R mice's defaults.
# For every file and method: mice(d, m, maxit, method, seed = r), lm(y ~ x + I(x^2) + z) on
# each completed set, summary(pool(), conf.int = TRUE); one row per term to OUT.csv, with the
# imputation's wall seconds.
suppressMessages(library(mice))
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 5) stop("usage: Rscript trees_nonlinear.R DIR m maxit methods OUT.csv")
dir <- args[1]
m <- as.integer(args[2])
maxit <- as.integer(args[3])
methods <- strsplit(args[4], ",", fixed = TRUE)[[1]]
out <- args[5]

files <- list.files(dir, pattern = "^rep_[0-9]+[.]csv$", full.names = TRUE)
reps <- as.integer(sub("^rep_([0-9]+)[.]csv$", "\\1", basename(files)))
files <- files[order(reps)]
reps <- sort(reps)

one_fit <- function(d, method, seed) {
  t0 <- proc.time()[["elapsed"]]
  imp <- mice(d, m = m, maxit = maxit, method = method, seed = seed, print = FALSE)
  seconds <- proc.time()[["elapsed"]] - t0
  s <- summary(pool(with(imp, lm(y ~ x + I(x^2) + z))), conf.int = TRUE)
  data.frame(
    method = method, term = as.character(s$term), estimate = s$estimate,
    std_error = s$std.error, df = s$df, conf_low = s[["2.5 %"]],
    conf_high = s[["97.5 %"]], seconds = seconds
  )
}

rows <- list()
for (i in seq_along(files)) {
  d <- read.csv(files[i], na.strings = "NA")
  for (method in methods) {
    rows[[length(rows) + 1]] <- cbind(rep = reps[i], one_fit(d, method, reps[i]))
  }
}
result <- do.call(rbind, rows)
result$mice <- as.character(packageVersion("mice"))
result$R <- as.character(getRversion())
result$rf_package <- "ranger"  # mice.impute.rf's default rfPackage
write.csv(result, out, row.names = FALSE)
cat(sprintf("RESULT files=%d methods=%s mice=%s R=%s\n", length(files),
            paste(methods, collapse = ","), packageVersion("mice"), getRversion()))
