# Reference numbers for bias-reduced (Firth) Bradley-Terry fits: BradleyTerry2::BTm(br = TRUE) (brglm).
# Run: Rscript tests/reference/bt_firth.R  (writes bt_firth_reference.csv next to this script)
# R 4.2.2, BradleyTerry2 1.1-2, brglm 0.7.2 (Debian bookworm packages r-cran-bradleyterry2, r-cran-brglm).
suppressMessages(library(BradleyTerry2))
out <- list()
add <- function(case, fit, ref) {
  s <- summary(fit)$coefficients
  est <- c(0, s[, 1]); se <- c(NA, s[, 2])
  names(est)[1] <- ref; names(se)[1] <- ref
  nm <- sub("^\\.\\.", "", names(est))
  out[[length(out) + 1]] <<- data.frame(case = case, item = nm, estimate = unname(est), se = unname(se))
}
# 1. Stigler's citations (BradleyTerry2 data; the CSV in shared/external/bradleyterry2): B cites A = A wins.
cit <- read.csv(Sys.getenv("CITATIONS_CSV"))
cit <- cit[cit$cited != cit$citing, ]
j <- sort(unique(c(cit$cited, cit$citing)))
pairs <- t(combn(j, 2))
win1 <- win2 <- numeric(nrow(pairs))
for (k in seq_len(nrow(pairs))) {
  a <- pairs[k, 1]; b <- pairs[k, 2]
  win1[k] <- sum(cit$Freq[cit$cited == a & cit$citing == b])
  win2[k] <- sum(cit$Freq[cit$cited == b & cit$citing == a])
}
d <- data.frame(p1 = factor(pairs[, 1], levels = j), p2 = factor(pairs[, 2], levels = j), win1 = win1, win2 = win2)
add("citations", BTm(cbind(win1, win2), p1, p2, data = d, br = TRUE,
                      control.brglm = brglm::brglm.control(br.epsilon = 1e-12, br.maxit = 1000)), j[1])
# 2. A small group in which item A never loses (no finite MLE): counts of wins of p1 over p2 and back.
small <- data.frame(p1 = factor(c("A", "A", "A", "B", "B", "C"), levels = c("A", "B", "C", "D")),
                    p2 = factor(c("B", "C", "D", "C", "D", "D"), levels = c("A", "B", "C", "D")),
                    win1 = c(3, 2, 4, 2, 3, 1), win2 = c(0, 0, 0, 1, 1, 2))
add("never_loses", BTm(cbind(win1, win2), p1, p2, data = small, br = TRUE,
                        control.brglm = brglm::brglm.control(br.epsilon = 1e-12, br.maxit = 1000)), "A")
res <- do.call(rbind, out)
write.csv(res, file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE))),
                         "bt_firth_reference.csv"), row.names = FALSE)
print(res, digits = 10)
