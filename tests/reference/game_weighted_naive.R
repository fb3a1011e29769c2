# survival::clogit(..., weights = w) without a cluster term reports a *robust* variance (each observation row its
# own cluster; survival >= 3 makes that the default with case weights) -- the column `se_weighted_frequency` of
# shared/external/mlogit/game_pl_robust_se.csv is that one. The inverse weighted information ("frequency
# weights") is clogit's `naive.var`. This script writes both for the Game data's illustrative sampling weights.
# Run: GAME_CSV=../shared/external/mlogit/game.csv Rscript tests/reference/game_weighted_naive.R
# R 4.2.2, survival 3.5-3 (Debian bookworm).
suppressMessages(library(survival))
G <- read.csv(Sys.getenv("GAME_CSV"))
items <- c("Xbox", "PlayStation", "PSPortable", "GameCube", "GameBoy", "PC")
rows <- list()
for (i in seq_len(nrow(G))) {
  r <- unlist(G[i, paste0("ch.", items)]); ord <- items[order(r)]
  for (s in 1:5) {
    avail <- ord[s:6]
    rows[[length(rows) + 1]] <- data.frame(id = i, stratum = i * 10 + s, item = avail,
                                           chosen = as.integer(avail == ord[s]), w = G$sampling_weight[i])
  }
}
X <- do.call(rbind, rows)
for (it in items[1:5]) X[[it]] <- as.integer(X$item == it)
f <- chosen ~ Xbox + PlayStation + PSPortable + GameCube + GameBoy + strata(stratum)
m2 <- clogit(f, data = X, weights = w, method = "efron")
out <- data.frame(item = items[1:5], estimate = coef(m2), se_naive = sqrt(diag(m2$naive.var)),
                  se_default_rowwise_robust = sqrt(diag(vcov(m2))))
write.csv(out, file.path(dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE))),
                         "game_weighted_naive.csv"), row.names = FALSE)
print(out, digits = 10)
