# Peer: R mice (default methods) on a make_mar / gen_mar CSV, imputation timed alone.
# Usage: Rscript anchor_mice.R FILE.csv m maxit [seed [numeric_method]]
#   numeric_method: the method of every variable mice gives pmm (its default for numbers),
#   e.g. cart or rf with R mice's defaults; logreg and polyreg stay as they are.
# Prints "RESULT impute_s=<wall s> cpu_s=<cpu s> ..." (parsed by benchmarks/run.py), then
# the pooled fit of glm(y ~ age + bp + smoke + diet, binomial) (not timed).
suppressMessages(library(mice))
args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 3) {
  stop("usage: Rscript anchor_mice.R FILE.csv m maxit [seed [numeric_method]]")
}
m <- as.integer(args[2]); maxit <- as.integer(args[3])
seed <- if (length(args) >= 4) as.integer(args[4]) else 1L
numeric_method <- if (length(args) >= 5) args[5] else "pmm"

d <- read.csv(args[1], na.strings = "NA")
# Binary and nominal columns as factors, so mice picks logreg (smoke) and polyreg (diet).
for (v in c("smoke", "female", "diet", "region")) d[[v]] <- factor(d[[v]])

method <- make.method(d)
method[method == "pmm"] <- numeric_method

t0 <- proc.time()
imp <- mice(d, m = m, maxit = maxit, seed = seed, method = method, print = FALSE)
dt <- proc.time() - t0

fit <- with(imp, glm(y ~ age + bp + smoke + diet, family = binomial))
pooled <- summary(pool(fit), conf.int = TRUE)
cat(sprintf("RESULT impute_s=%.3f cpu_s=%.3f rows=%d m=%d maxit=%d mice=%s R=%s\n",
            dt[["elapsed"]], dt[["user.self"]] + dt[["sys.self"]], nrow(d), m, maxit,
            as.character(packageVersion("mice")), getRversion()))
cat("methods:", paste(names(imp$method), imp$method, sep = "=", collapse = " "), "\n")
print(pooled[, c("term", "estimate", "std.error", "df", "2.5 %", "97.5 %")], digits = 4)
