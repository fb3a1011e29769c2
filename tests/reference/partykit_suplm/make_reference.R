## partykit's supLM p-values (the mob() / psychotree / PlackettLuce-tree variable selection) for
## survey_weights.subgroups._instability.suplm_pvalue(method="partykit") (issue 14, item 3).
##
## partykit 1.2-16 approximates the p-value of the supLM statistic with Hansen's (1997, J. Business & Economic
## Statistics 15:60-67) response surface for k <= 40 parameters (interpolated in the trimming) and Estrella's (2003)
## asymptotic formula for k > 40. This script calls partykit's own function: it is taken, unchanged, out of the
## body of partykit:::mob_partynode and evaluated with partykit's coefficient table; nothing of it is copied into
## the package. Outputs, next to this script:
##   suplm_grid.csv      k, trim (= from / n), lambda, stat, pvalue (unadjusted) over a grid of cases;
##   evs_bttree_tests.csv the numeric-variable tests of psychotree's EuropeanValuesStudy example tree
##                        bttree(paircomp ~ gender + eduage + birthyear + marital + employment + income + country2,
##                        data = na.omit(EuropeanValuesStudy), alpha = 0.01): node, n, k, from, variable,
##                        statistic, unadjusted and adjusted p-value, number of covariates tested (the data are not
##                        copied: psychotree is GPL);
##   evs_bttree_leaves.csv the tree's leaves: node, n, item, weight (itempar: worths summing to 1);
##   evs_bttree_print.txt the printed tree and every node's sctest().
## With EVS_CSV_OUT=path (outside the repository) it also writes the data as tests/test_tree_pvalues.py reads them
## from shared/external/psychotree/europeanvaluesstudy.csv (respondent, the six paired comparisons "a:b" coded
## 1 = a preferred, -1 = b preferred, NA = missing, and the covariates).
## Run from the repository root:  Rscript tests/reference/partykit_suplm/make_reference.R
suppressPackageStartupMessages({library(partykit); library(psychotree); library(strucchange)})
out_dir <- "tests/reference/partykit_suplm"

## the text of partykit's nested function, from its first line to the first prefix that parses
extract_function <- function(fun, name) {
  txt <- deparse(fun, width.cutoff = 500L)
  start <- grep(paste0("^\\s*", gsub(".", "\\.", name, fixed = TRUE), " <- function"), txt)[1L]
  for (end in start:length(txt)) {
    expr <- tryCatch(parse(text = txt[start:end]), error = function(e) NULL)
    if (!is.null(expr)) return(expr[[1L]][[3L]])
  }
  stop("not found: ", name)
}
env <- new.env()
env$beta <- partykit:::mob_beta_suplm
logp_supLM <- eval(extract_function(partykit:::mob_partynode, "logp.supLM"), env)
lambda_of <- function(n, from) ((n - from) * (n - from)) / (from * from)  # partykit: to = n - from

## grid: trimming given as from / n with n = 10000 (partykit's lambda from n and from)
n <- 10000
froms <- c(30, 100, 150, 400, 700, 1000, 1234, 1500, 2000, 2900, 3000, 4000, 4500, 4850, 4900, 4950, 5000)
ks <- c(1, 2, 3, 4, 5, 8, 12, 20, 33, 40, 41, 60)
grid <- list()
for (k in ks) for (from in froms) {
  q <- qchisq(c(0.9, 0.5, 0.2, 0.05, 0.01, 1e-3, 1e-5, 1e-9), k, lower.tail = FALSE)
  stats <- c(0.25 * k, k, q, q[8] + 20)
  for (x in stats) {
    lam <- lambda_of(n, from)
    grid[[length(grid) + 1L]] <- data.frame(k = k, n = n, from = from, trim = from / n, lambda = lam, stat = x,
                                            pvalue = exp(logp_supLM(x, k, lam)))
  }
}
write.csv(do.call(rbind, grid), file.path(out_dir, "suplm_grid.csv"), row.names = FALSE)

## EuropeanValuesStudy example tree
data("EuropeanValuesStudy", package = "psychotree")
evs <- na.omit(EuropeanValuesStudy)
bt <- bttree(paircomp ~ gender + eduage + birthyear + marital + employment + income + country2,
             data = evs, alpha = 0.01)
k <- length(coef(bt, node = 1))
minsize <- ceiling(10 * k / NCOL(evs$paircomp))  # mob's default minsize: 10 x parameters / NCOL(response) = 5
rows <- list()
for (id in nodeids(bt)) {
  info <- nodeapply(bt, ids = id, FUN = function(nd) nd$info)[[1L]]
  nobs <- info$nobs
  from <- max(ceiling(nobs * 0.1), minsize)
  tst <- sctest(bt, node = id)
  m <- sum(!is.na(tst["p.value", ]))
  for (v in c("eduage", "birthyear")) {
    stat <- unname(tst["statistic", v])
    if (!is.finite(tst["p.value", v])) next
    rows[[length(rows) + 1L]] <- data.frame(
      node = id, n = nobs, k = k, from = from, variable = v, statistic = stat,
      pvalue = exp(logp_supLM(stat, k, lambda_of(nobs, from))), pvalue_adjusted = unname(tst["p.value", v]),
      n_tested = m, split = !is.null(nodeapply(bt, ids = id, FUN = function(nd) nd$split)[[1L]]) &&
        identical(names(bt$data)[nodeapply(bt, ids = id, FUN = function(nd) nd$split$varid)[[1L]]], v))
  }
}
write.csv(do.call(rbind, rows), file.path(out_dir, "evs_bttree_tests.csv"), row.names = FALSE)
leaves <- nodeids(bt, terminal = TRUE)
ip <- do.call(rbind, lapply(leaves, function(id) {
  w <- itempar(bt[[id]])  # worths, summing to 1 over order, decisions, prices, freedom
  data.frame(node = id, n = nodeapply(bt, ids = id, FUN = function(nd) nd$info$nobs)[[1L]], item = names(w),
             weight = as.numeric(w))
}))
write.csv(ip, file.path(out_dir, "evs_bttree_leaves.csv"), row.names = FALSE)
## optional: the data as the package's test reads them (written outside the repository only)
evs_out <- Sys.getenv("EVS_CSV_OUT")
if (nzchar(evs_out)) {
  pcm <- as.matrix(evs$paircomp)
  d <- data.frame(respondent = seq_len(nrow(evs)), pcm, check.names = FALSE)
  for (v in c("gender", "eduage", "birthyear", "marital", "employment", "income", "country2")) d[[v]] <- evs[[v]]
  write.csv(d, evs_out, row.names = FALSE)
}
sink(file.path(out_dir, "evs_bttree_print.txt"))
print(bt)
for (id in nodeids(bt)) { cat("\nnode", id, "\n"); print(sctest(bt, node = id)) }
sink()
writeLines(capture.output(sessionInfo()), file.path(out_dir, "sessionInfo.txt"))
