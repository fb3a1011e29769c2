# Reference numbers for Bradley-Terry with a comparison-level covariate (home advantage) and with structured
# abilities (item-level predictors): BradleyTerry2::BTm.  Run: Rscript tests/reference/bt_home_structured.R
# with BASEBALL_CSV pointing at shared/external/bradleyterry2/baseball.csv.  Writes bt_home_structured.csv.
# R 4.2.2, BradleyTerry2 1.1-2 (Debian bookworm r-cran-bradleyterry2).
suppressMessages(library(BradleyTerry2))
bb <- read.csv(Sys.getenv("BASEBALL_CSV"))
teams <- sort(unique(c(bb$home.team, bb$away.team)))
bb$home.team <- data.frame(team = factor(bb$home.team, levels = teams), at.home = 1)
bb$away.team <- data.frame(team = factor(bb$away.team, levels = teams), at.home = 0)
m1 <- BTm(cbind(home.wins, away.wins), home.team, away.team, formula = ~ team + at.home, id = "team", data = bb)
s <- summary(m1)$coefficients
out <- data.frame(case = "home", term = sub("^team", "", rownames(s)), estimate = s[, 1], se = s[, 2])
out <- rbind(out, data.frame(case = "home", term = "logLik", estimate = as.numeric(logLik(m1)), se = NA))
# structured abilities: log-ability of team j = g1 * x1_j + g2 * x2_j with made-up team features
feat <- data.frame(team = factor(teams, levels = teams), x1 = c(0.5, -1, 2, 0.3, 1.1, -0.4, 0.9),
                   x2 = c(1, 0, 0, 1, 1, 0, 1))
bb2 <- read.csv(Sys.getenv("BASEBALL_CSV"))
pl <- list(contests = data.frame(home = factor(bb2$home.team, levels = teams),
                                 away = factor(bb2$away.team, levels = teams),
                                 hw = bb2$home.wins, aw = bb2$away.wins),
           predictors = feat)
m2 <- BTm(cbind(hw, aw), home, away, formula = ~ x1[..] + x2[..], id = "..", data = pl)
s2 <- summary(m2)$coefficients
out <- rbind(out, data.frame(case = "structured", term = rownames(s2), estimate = s2[, 1], se = s2[, 2]))
out <- rbind(out, data.frame(case = "structured", term = "logLik", estimate = as.numeric(logLik(m2)), se = NA))
write.csv(out, file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE))),
                         "bt_home_structured.csv"), row.names = FALSE)
print(out, digits = 10)
