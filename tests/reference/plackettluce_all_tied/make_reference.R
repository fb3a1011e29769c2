## R PlackettLuce references for Rankings.from_ratings(all_tied="keep") (issue 14, item 2).
##
## Respondents whose answered items are all rated equal are kept as one tie group, as PlackettLuce does; ratings are
## turned into rank positions (higher rating = better, equal = tied, NA = not ranked) and fitted by PlackettLuce().
## Writes, next to this script, reference.csv (one row per case x term: log-worth with the first item as reference,
## log tie parameters, standard errors) and reference_fit.csv (one row per case: log-likelihood, df, number of
## rankings, number of all-tied rankings, highest tie order).  Data: the issue's 8-respondent example, the
## package's own synthetic survey data/survey_synthetic_335.csv, that survey with answers blanked by the rule
## in blank_cells() (the same rule as tests/test_all_tied.py), and, when ISSP2000_RDATA names prefmod's
## data/issp2000.RData (cran/prefmod @ 33d8401, v0.8-36; GESIS usage regulations, so the data are not copied here),
## the issue's ISSP 2000 case: its six Likert items, a higher rating counted as better, as from_ratings does.
##
## Run from the repository root:  [ISSP2000_RDATA=.../issp2000.RData] Rscript tests/reference/plackettluce_all_tied/make_reference.R
## Computed with R 4.2.2 and PlackettLuce 0.4.5 (hturner/PlackettLuce @ 411b1ef, installed from source into a
## private library with its CVXR import removed: CVXR is used only by pladmm(), which is not called here).
suppressPackageStartupMessages(library(PlackettLuce))
out_dir <- "tests/reference/plackettluce_all_tied"

ratings_to_rankings <- function(x) {
  x <- as.matrix(x)
  r <- t(apply(x, 1, function(v) {
    out <- integer(length(v))
    ok <- !is.na(v)
    out[ok] <- match(-v[ok], sort(unique(-v[ok])))
    out
  }))
  colnames(r) <- colnames(x)
  r
}

blank_cells <- function(x) {
  ## row i (0-based): i %% 6 == 0 loses item (i %/% 6) %% m; i %% 10 == 3 loses items i %% m and (i + 2) %% m
  m <- ncol(x)
  for (i in 0:(nrow(x) - 1)) {
    if (i %% 6 == 0) x[i + 1, (i %/% 6) %% m + 1] <- NA
    if (i %% 10 == 3) x[i + 1, c(i %% m, (i + 2) %% m) + 1] <- NA
  }
  x
}

fit_rows <- function(case, x, npseudo) {
  R <- ratings_to_rankings(x)
  keep <- rowSums(R > 0) >= 2
  rk <- as.rankings(R[keep, , drop = FALSE])
  mod <- PlackettLuce(rk, npseudo = npseudo)
  cf <- coef(mod, ref = 1)
  se <- sqrt(diag(vcov(mod, ref = 1)))
  n_tied <- sum(apply(R[keep, , drop = FALSE], 1, function(v) length(unique(v[v > 0])) == 1))
  max_tie <- max(apply(R[keep, , drop = FALSE], 1, function(v) max(table(v[v > 0]))))
  list(
    coef = data.frame(case = case, npseudo = npseudo, term = names(cf), estimate = unname(cf),
                      se = unname(se[names(cf)])),
    fit = data.frame(case = case, npseudo = npseudo, loglik = as.numeric(logLik(mod)),
                     df = attr(logLik(mod), "df"), n_rankings = sum(keep), n_all_tied = n_tied,
                     max_tie_order = max_tie)
  )
}

issue <- data.frame(a = c(5, 4, 3, 5, 4, 2, 4, NA), b = c(4, 4, 3, 5, 2, 3, 4, 2),
                    c = c(1, NA, 3, 2, 2, 5, 4, 2), d = c(2, 4, NA, 1, 3, 4, 1, 2))
criteria <- c("empathy", "active_listening", "self_motivated_change", "trust_rapport", "patient_autonomy")
survey <- read.csv("data/survey_synthetic_335.csv")[, criteria]

res <- list(
  fit_rows("issue_example", issue, 0),
  fit_rows("survey335", survey, 0),
  fit_rows("survey335", survey, 0.5),
  fit_rows("survey335_blanked", blank_cells(survey), 0),
  fit_rows("survey335_blanked", blank_cells(survey), 0.5)
)
issp_file <- Sys.getenv("ISSP2000_RDATA")
if (nzchar(issp_file)) {
  load(issp_file)
  res <- c(res, list(fit_rows("issp2000", issp2000[, c("CAR", "IND", "FARM", "WATER", "TEMP", "GENE")], 0)))
}
write.csv(do.call(rbind, lapply(res, `[[`, "coef")), file.path(out_dir, "reference.csv"), row.names = FALSE)
write.csv(do.call(rbind, lapply(res, `[[`, "fit")), file.path(out_dir, "reference_fit.csv"), row.names = FALSE)
writeLines(capture.output(sessionInfo()), file.path(out_dir, "sessionInfo.txt"))
