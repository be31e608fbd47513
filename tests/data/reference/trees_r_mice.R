# Reference numbers for sparkmice's cart and rf from R mice's own (tests/analysis/
# test_trees_r_mice.py). Run from this directory:
#   Rscript trees_r_mice.R [seeds]
# Writes
#   trees_r_mice.csv: per data set, method and term, the mean and SD over `seeds` seeds of
#     the pooled estimate and of its pooled standard error (mice(..., seed = s), s = 1..seeds,
#     R mice's defaults otherwise), with the versions of R, mice, rpart and ranger;
#   trees_r_rpart_leaves.csv: R mice's cart tree for y of nonlinear_n200.csv (rpart with
#     mice.impute.cart's control: minbucket = 5, cp = 1e-4): the leaf of every row.
# Data: nhanes.csv (R mice's nhanes; bmi, hyp, chl on the method, m = 5, maxit = 5,
# lm(chl ~ age + bmi)) and nonlinear_n200.csv (sparkmice.datasets.make_nonlinear(200, 0)
# with x and z rounded to 0.1; y on the method, m = 5, maxit = 1: y is the only incomplete
# variable, so further iterations draw from the same tree; lm(y ~ x + I(x^2) + z)).
suppressMessages(library(mice))
args <- commandArgs(trailingOnly = TRUE)
seeds <- if (length(args) >= 1) as.integer(args[1]) else 500L

cases <- list(
  nhanes = list(file = "nhanes.csv", maxit = 5L, formula = chl ~ age + bmi),
  nonlinear_n200 = list(file = "nonlinear_n200.csv", maxit = 1L,
                        formula = y ~ x + I(x^2) + z)
)

pooled_over_seeds <- function(d, method, maxit, formula) {
  per_seed <- lapply(seq_len(seeds), function(s) {
    imp <- mice(d, m = 5, maxit = maxit, method = method, seed = s, print = FALSE)
    fits <- lapply(seq_len(imp$m), function(k) lm(formula, data = complete(imp, k)))
    p <- summary(pool(as.mira(fits)))
    data.frame(term = as.character(p$term), estimate = p$estimate, std_error = p$std.error)
  })
  all <- do.call(rbind, per_seed)
  terms <- unique(all$term)
  data.frame(
    term = terms,
    mean_estimate = sapply(terms, function(t) mean(all$estimate[all$term == t])),
    sd_estimate = sapply(terms, function(t) sd(all$estimate[all$term == t])),
    mean_std_error = sapply(terms, function(t) mean(all$std_error[all$term == t])),
    sd_std_error = sapply(terms, function(t) sd(all$std_error[all$term == t]))
  )
}

rows <- list()
for (name in names(cases)) {
  case <- cases[[name]]
  d <- read.csv(case$file, na.strings = c("NA", ""))
  for (method in c("cart", "rf")) {
    r <- pooled_over_seeds(d, method, case$maxit, case$formula)
    rows[[length(rows) + 1]] <- cbind(data = name, method = method, r, seeds = seeds,
                                      m = 5L, maxit = case$maxit)
  }
}
out <- do.call(rbind, rows)
out$R <- as.character(getRversion())
out$mice <- as.character(packageVersion("mice"))
out$rpart <- as.character(packageVersion("rpart"))
out$ranger <- as.character(packageVersion("ranger"))
write.csv(out, "trees_r_mice.csv", row.names = FALSE)

# R mice's cart tree for y, as mice.impute.cart grows it: the leaf of every row.
d <- read.csv("nonlinear_n200.csv", na.strings = "NA")
ry <- !is.na(d$y)
fit <- rpart::rpart(y ~ x + z, data = d[ry, ], method = "anova",
                    control = rpart::rpart.control(minbucket = 5, cp = 1e-4))
fit$frame$yval <- as.numeric(row.names(fit$frame))  # predict() then gives the leaf's number
leaves <- data.frame(row = seq_len(nrow(d)) - 1L, observed = ry,
                     leaf = as.integer(predict(fit, newdata = d)))
write.csv(leaves, "trees_r_rpart_leaves.csv", row.names = FALSE)
cat(sprintf("seeds=%d leaves=%d R=%s mice=%s\n", seeds, length(unique(leaves$leaf)),
            getRversion(), packageVersion("mice")))
