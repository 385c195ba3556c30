#!/usr/bin/env Rscript
# Oracle for alloop's GLMM engine: simulates data sets with crossed participant and item random
# effects, fits them with lme4::glmer / lmer, stats::glm / lm and ordinal::clm / clmm, and writes
# the data (CSV) and the fits (JSON) beside this script. Run by hand, never in CI:
#
#   apt-get install -y --no-install-recommends r-base-core r-cran-lme4 r-cran-ordinal r-cran-jsonlite
#   Rscript tests/glmm/oracle/make_oracle.R            (from the repository root; several minutes)
#
# The JSON has one entry per fit, in the shape `alloop glmm fit --json` prints, plus the call.
suppressPackageStartupMessages({
  library(lme4)
  library(ordinal)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
only <- commandArgs(trailingOnly = TRUE)  # optional: names of fits to (re)make

# ---------------------------------------------------------------- data
simulate_design <- function(n_part, n_item, seed) {
  set.seed(seed)
  d <- expand.grid(item = seq_len(n_item), participant = seq_len(n_part))
  d <- d[, c("participant", "item")]
  x_item <- as.numeric(scale(rnorm(n_item)))
  d$x <- round(x_item[d$item], 4)
  # a within-participant condition, counterbalanced (Latin square over items)
  d$c <- ifelse((d$participant + d$item) %% 2 == 0, 0.5, -0.5)
  d$participant <- sprintf("p%02d", d$participant)
  d$item <- sprintf("i%02d", d$item)
  d
}

random_effects <- function(d, sd_p, sd_px, cor_px, sd_i) {
  parts <- sort(unique(d$participant)); items <- sort(unique(d$item))
  S <- matrix(c(sd_p^2, cor_px * sd_p * sd_px, cor_px * sd_p * sd_px, sd_px^2), 2)
  b <- matrix(rnorm(2 * length(parts)), ncol = 2) %*% chol(S)
  bi <- rnorm(length(items), 0, sd_i)
  p <- match(d$participant, parts); i <- match(d$item, items)
  b[p, 1] + b[p, 2] * d$x + bi[i]
}

make_binary <- function() {
  d <- simulate_design(36, 24, 101)
  eta <- -0.3 + 0.8 * d$x + 0.4 * d$c + random_effects(d, 1.0, 0.6, 0.4, 0.8)
  d$y <- rbinom(nrow(d), 1, plogis(eta))
  d
}

make_gaussian <- function() {
  d <- simulate_design(36, 24, 202)
  eta <- 2 + 0.5 * d$x + 0.3 * d$c + random_effects(d, 0.8, 0.4, -0.3, 0.6)
  d$y <- round(eta + rnorm(nrow(d), 0, 1), 4)
  d
}

make_ordinal <- function() {
  d <- simulate_design(30, 20, 303)
  eta <- 0.7 * d$x + 0.4 * d$c + random_effects(d, 1.0, 0.5, 0.3, 0.7)
  theta <- c(-2.4, -1.4, -0.5, 0.3, 1.2, 2.3)
  u <- runif(nrow(d))
  cum <- sapply(theta, function(t) plogis(t - eta))
  d$y <- 1L + rowSums(u > cum)  # 1..7
  d
}

write_data <- function(d, name) {
  write.csv(d, file.path(here, paste0(name, ".csv")), row.names = FALSE, quote = FALSE)
  d
}

data <- list(
  binary = write_data(make_binary(), "binary"),
  gaussian = write_data(make_gaussian(), "gaussian"),
  ordinal = write_data(make_ordinal(), "ordinal")
)

# ---------------------------------------------------------------- fits
rhs <- function(predictors, mode, correlated) {
  fx <- paste(c("1", predictors), collapse = " + ")
  re <- switch(mode,
    fixed = character(0),
    random_intercepts = c("(1 | participant)", "(1 | item)"),
    random_slopes = if (correlated) {
      c(sprintf("(1 + %s | participant)", paste(predictors, collapse = " + ")), "(1 | item)")
    } else {
      c("(1 | participant)", sprintf("(0 + %s | participant)", predictors), "(1 | item)")
    }
  )
  paste(c(fx, re), collapse = " + ")
}

fixed_block <- function(est, se) {
  out <- list()
  for (n in names(est)) out[[n]] <- list(estimate = unname(est[[n]]), se = unname(se[[n]]))
  out
}

sd_cor_lme4 <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  sd <- list(); cor <- list()
  for (r in seq_len(nrow(vc))) {
    grp <- sub("\\.[0-9]+$", "", vc$grp[r])
    if (is.na(vc$var2[r])) {
      key <- if (grp == "Residual") "residual" else paste0(grp, ":", vc$var1[r])
      sd[[key]] <- vc$sdcor[r]
    } else {
      cor[[paste0(grp, ":", vc$var1[r], ":", vc$var2[r])]] <- vc$sdcor[r]
    }
  }
  list(sd = sd, cor = cor)
}

sd_cor_clmm <- function(m) {
  sd <- list(); cor <- list()
  vc <- VarCorr(m)
  for (j in seq_along(vc)) {
    S <- vc[[j]]
    grp <- sub("\\.[0-9]+$", "", names(vc)[j])
    nm <- colnames(S)
    s <- sqrt(diag(S))
    for (k in seq_along(nm)) sd[[paste0(grp, ":", nm[k])]] <- unname(s[k])
    if (length(nm) > 1) {
      for (a in 1:(length(nm) - 1)) for (b in (a + 1):length(nm)) {
        cor[[paste0(grp, ":", nm[a], ":", nm[b])]] <- unname(S[a, b] / (s[a] * s[b]))
      }
    }
  }
  list(sd = sd, cor = cor)
}

fit_one <- function(name, family, mode, predictors, correlated = TRUE, reml = FALSE) {
  d <- data[[family]]
  f <- as.formula(paste("y ~", rhs(predictors, mode, correlated)))
  call <- ""
  t0 <- proc.time()[["elapsed"]]
  if (family == "ordinal") {
    d$y <- factor(d$y, levels = 1:7, ordered = TRUE)
    d$participant <- factor(d$participant); d$item <- factor(d$item)
    if (mode == "fixed") {
      m <- clm(f, data = d); call <- "ordinal::clm"
    } else {
      m <- clmm(f, data = d, Hess = TRUE); call <- "ordinal::clmm (Laplace)"
    }
  } else if (family == "binary") {
    if (mode == "fixed") {
      m <- glm(f, data = d, family = binomial); call <- "stats::glm"
    } else {
      m <- glmer(f, data = d, family = binomial); call <- "lme4::glmer (Laplace, nAGQ = 1)"
    }
  } else {
    if (mode == "fixed") {
      m <- lm(f, data = d); call <- "stats::lm"
    } else {
      m <- lmer(f, data = d, REML = reml); call <- paste0("lme4::lmer (", if (reml) "REML" else "ML", ")")
    }
  }
  seconds <- proc.time()[["elapsed"]] - t0
  out <- list(
    name = name, family = family, mode = mode, predictors = predictors,
    correlated = correlated, reml = reml, call = call,
    formula = paste(deparse(f, width.cutoff = 500L), collapse = ""), n = nrow(d)
  )
  if (family == "ordinal") {
    cf <- coef(m); V <- vcov(m); se <- sqrt(diag(V))
    th <- names(m$alpha)
    beta <- m$beta
    out$fixed <- fixed_block(as.list(beta), as.list(se[names(beta)]))
    out$thresholds <- unname(m$alpha)
    out$threshold_se <- unname(se[th])
    out$loglik <- as.numeric(logLik(m))
    if (mode == "fixed") {
      out$sd <- list(); out$cor <- list()
      out$converged <- m$convergence$code == 0
    } else {
      sc <- sd_cor_clmm(m); out$sd <- sc$sd; out$cor <- sc$cor
      out$converged <- m$optRes$convergence == 0
    }
    out$singular <- FALSE
  } else if (mode == "fixed") {
    s <- summary(m)$coefficients
    out$fixed <- fixed_block(as.list(s[, 1]), as.list(s[, 2]))
    out$sd <- if (family == "gaussian") list(residual = summary(m)$sigma) else list()
    out$cor <- list()
    out$loglik <- if (family == "gaussian") as.numeric(logLik(m, REML = reml)) else as.numeric(logLik(m))
    out$converged <- if (family == "binary") m$converged else TRUE
    out$singular <- FALSE
  } else {
    s <- summary(m)$coefficients
    out$fixed <- fixed_block(as.list(s[, 1]), as.list(s[, 2]))
    sc <- sd_cor_lme4(m); out$sd <- sc$sd; out$cor <- sc$cor
    out$loglik <- as.numeric(logLik(m))
    out$deviance_criterion <- if (family == "gaussian") unname(m@devcomp$cmp[if (reml) "REML" else "dev"]) else unname(m@devcomp$cmp["dev"])
    out$converged <- is.null(m@optinfo$conv$lme4$code) && m@optinfo$conv$opt == 0
    out$singular <- isSingular(m)
    out$theta <- unname(getME(m, "theta"))
    out$messages <- unlist(m@optinfo$conv$lme4$messages)
  }
  out$seconds <- seconds
  message(sprintf("%-40s %6.2f s  loglik %.4f", name, seconds, out$loglik))
  out
}

specs <- list(
  list("binary_fixed", "binary", "fixed", c("x", "c")),
  list("binary_random_intercepts", "binary", "random_intercepts", c("x", "c")),
  list("binary_random_slopes", "binary", "random_slopes", "x"),
  list("binary_random_slopes_uncorrelated", "binary", "random_slopes", "x", FALSE),
  list("binary_random_slopes_two", "binary", "random_slopes", c("x", "c")),
  list("gaussian_fixed_ml", "gaussian", "fixed", c("x", "c")),
  list("gaussian_fixed_reml", "gaussian", "fixed", c("x", "c"), TRUE, TRUE),
  list("gaussian_random_intercepts_ml", "gaussian", "random_intercepts", c("x", "c")),
  list("gaussian_random_intercepts_reml", "gaussian", "random_intercepts", c("x", "c"), TRUE, TRUE),
  list("gaussian_random_slopes_ml", "gaussian", "random_slopes", "x"),
  list("gaussian_random_slopes_reml", "gaussian", "random_slopes", "x", TRUE, TRUE),
  list("gaussian_random_slopes_uncorrelated_reml", "gaussian", "random_slopes", "x", FALSE, TRUE),
  list("gaussian_random_slopes_two_reml", "gaussian", "random_slopes", c("x", "c"), TRUE, TRUE),
  list("ordinal_fixed", "ordinal", "fixed", c("x", "c")),
  list("ordinal_random_intercepts", "ordinal", "random_intercepts", c("x", "c")),
  list("ordinal_random_slopes", "ordinal", "random_slopes", "x"),
  list("ordinal_random_slopes_uncorrelated", "ordinal", "random_slopes", "x", FALSE)
)

path <- file.path(here, "fits.json")
fits <- if (file.exists(path) && length(only)) fromJSON(path, simplifyVector = FALSE) else list()
for (s in specs) {
  if (length(only) && !(s[[1]] %in% only)) next
  a <- c(s, list(TRUE, FALSE))
  fits[[s[[1]]]] <- do.call(fit_one, list(a[[1]], a[[2]], a[[3]], a[[4]],
    correlated = if (length(s) >= 5) s[[5]] else TRUE, reml = if (length(s) >= 6) s[[6]] else FALSE))
}
meta <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
             ordinal = as.character(packageVersion("ordinal")))
fits[["_meta"]] <- meta
writeLines(toJSON(fits, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"), path)
