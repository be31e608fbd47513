# Peer: R mice on the wide reference workload (benchmarks/wide.py), as an R user would run it.
#
# Usage: Rscript wide_mice.R FILE.csv VARIANT OUT.csv [m maxit seed]
#   FILE.csv  the CSV copy of wide_n<rows>_seed<seed>.parquet (benchmarks/peers/wide_peers.py csv)
#   VARIANT   default    mice(d, m, maxit, seed): R's default methods (pmm, logreg, polr, polyreg)
#             quickpred  the same with predictorMatrix = quickpred(d, mincor = 0.1)
#             exclude    quickpred(d, mincor = 0.1), and n120, n300 neither imputed nor used
#                        as predictors (method "" and their predictor columns zeroed)
#             maxnwts    quickpred(d, mincor = 0.1) and nnet.MaxNWts = 100000 passed through
#                        mice() to polyreg / polr's multinom (the usual answer to "too many
#                        weights")
#   OUT.csv   the pooled fit of the truth's formula, one row per term (truth's term names)
#
# Column types: n* nominal codes as factors (polyreg), o1..o4 as ordered factors (polr),
# b* as two-level factors (logreg), c* and y numeric (pmm).
# Prints "RESULT status=... seconds=..." and, when mice fails, the error text and the variable
# it was imputing (found on the call stack), the iteration and the imputation.
suppressMessages(library(mice))
args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 3) stop("usage: Rscript wide_mice.R FILE.csv VARIANT OUT.csv [m maxit seed]")
path <- args[1]; variant <- args[2]; out <- args[3]
m <- if (length(args) >= 4) as.integer(args[4]) else 5L
maxit <- if (length(args) >= 5) as.integer(args[5]) else 5L
seed <- if (length(args) >= 6) as.integer(args[6]) else 1L

d <- read.csv(path, na.strings = c("NA", ""), stringsAsFactors = FALSE)
ordered_levels <- c(o1 = 3L, o2 = 4L, o3 = 5L, o4 = 7L)
for (v in names(d)) {
  if (grepl("^n[0-9]+$", v)) d[[v]] <- factor(d[[v]])
  else if (v %in% names(ordered_levels)) d[[v]] <- factor(d[[v]], levels = seq_len(ordered_levels[[v]]), ordered = TRUE)
  else if (grepl("^b[0-9]+$", v)) d[[v]] <- factor(d[[v]], levels = c(0, 1))
}
cat(sprintf("data: %d rows, %d columns, %d incomplete; R %s, mice %s, nnet %s\n", nrow(d), ncol(d),
            sum(colSums(is.na(d)) > 0), getRversion(), packageVersion("mice"), packageVersion("nnet")))

# Where mice is: the sampler's frames hold the variable (yname), the iteration (k) and the
# imputation (i).
locate <- function() {
  at <- list(var = NA_character_, iter = NA, imp = NA)
  for (f in rev(sys.frames())) {
    if (is.na(at$var) && exists("yname", envir = f, inherits = FALSE)) at$var <- get("yname", envir = f)[1]
    if (is.na(at$iter) && exists("k", envir = f, inherits = FALSE) && exists("i", envir = f, inherits = FALSE)) {
      k <- get("k", envir = f); i <- get("i", envir = f)
      if (is.numeric(k) && is.numeric(i) && length(k) == 1 && length(i) == 1) { at$iter <- k; at$imp <- i }
    }
  }
  at
}
failure <- new.env()
failure$at <- NULL; failure$stack <- ""

# Progress: each call of an imputation method prints its variable, iteration, imputation,
# seconds taken and seconds since mice() started (trace() on mice's own functions; the exit
# code also runs when the method fails, marked "FAILED").
clock <- new.env()
clock$start <- NA_real_; clock$entered <- NA_real_
step_done <- function() {
  now <- proc.time()[["elapsed"]]
  at <- locate()
  cat(sprintf("  [%7.1f s] iter %s imp %s %-5s %6.2f s%s\n", now - clock$start, at$iter, at$imp, at$var,
              now - clock$entered, if (is.null(failure$at)) "" else "  FAILED"))
}
for (f in c("pmm", "logreg", "polr", "polyreg")) {
  suppressMessages(trace(paste0("mice.impute.", f), where = asNamespace("mice"), print = FALSE,
                         tracer = quote(clock$entered <- proc.time()[["elapsed"]]),
                         exit = quote(step_done())))
}

pred <- NULL
meth <- NULL
t_setup <- proc.time()
if (!variant %in% c("default", "quickpred", "exclude", "maxnwts")) stop("unknown variant ", variant)
if (variant != "default") pred <- quickpred(d, mincor = 0.1)
if (variant == "exclude") {
  meth <- make.method(d)
  meth[c("n120", "n300")] <- ""
  pred[, c("n120", "n300")] <- 0
  pred[c("n120", "n300"), ] <- 0
}
setup_s <- (proc.time() - t_setup)[["elapsed"]]
if (!is.null(pred)) {
  cat(sprintf("predictor matrix (%.1f s): predictors per incomplete target: %s\n", setup_s,
              paste(sprintf("%s=%d", rownames(pred), rowSums(pred))[colSums(is.na(d)) > 0], collapse = " ")))
  for (v in grep("^n[0-9]+$", rownames(pred), value = TRUE)) {
    cat(sprintf("  %s <- %s\n", v, paste(colnames(pred)[pred[v, ] == 1], collapse = " ")))
  }
}

args_mice <- list(data = d, m = m, maxit = maxit, seed = seed, print = FALSE)
if (!is.null(pred)) args_mice$predictorMatrix <- pred
if (!is.null(meth)) args_mice$method <- meth
if (variant == "maxnwts") args_mice$nnet.MaxNWts <- 100000
status <- "ok"; err <- NA_character_
t0 <- proc.time()
clock$start <- t0[["elapsed"]]
imp <- tryCatch(
  withCallingHandlers(do.call(mice, args_mice), error = function(e) {
    failure$at <- locate()
    calls <- vapply(sys.calls(), function(cl) paste(deparse(cl[[1]])[1], collapse = ""), "")
    failure$stack <- paste(utils::head(calls, 25), collapse = " > ")
  }),
  error = function(e) { status <<- "failed"; err <<- conditionMessage(e); NULL })
dt <- proc.time() - t0
cat(sprintf("RESULT variant=%s status=%s seconds=%.1f cpu_s=%.1f rows=%d m=%d maxit=%d\n", variant, status,
            dt[["elapsed"]] + setup_s, dt[["user.self"]] + dt[["sys.self"]], nrow(d), m, maxit))
if (status == "failed") {
  at <- failure$at
  cat(sprintf("FAILED variable=%s iteration=%s imputation=%s\nERROR %s\nSTACK %s\n", at$var, at$iter, at$imp,
              gsub("\n", " ", err), failure$stack))
  quit(status = 3)
}
cat("methods:", paste(names(imp$method), imp$method, sep = "=", collapse = " ")[1], "\n")
if (!is.null(imp$loggedEvents) && nrow(imp$loggedEvents) > 0) {
  cat("loggedEvents (first 20):\n"); print(utils::head(imp$loggedEvents, 20))
}

fit <- with(imp, lm(y ~ c01 + c02 + c03 + b01 + n4 + n8))
pooled <- summary(pool(fit))
term <- as.character(pooled$term)
term[term == "(Intercept)"] <- "Intercept"
term[term == "b011"] <- "b01"
term <- sub("^(n4|n8)(.*)$", "C(\\1)[T.\\2]", term)
write.csv(data.frame(term = term, estimate = pooled$estimate, std_error = pooled$std.error, df = pooled$df),
          out, row.names = FALSE)
print(pooled[, c("term", "estimate", "std.error", "df")], digits = 4)
