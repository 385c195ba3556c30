"""alloop.tools.glmm: mixed-effects models for human-judgment data, fit as lme4 fits them.

- `design`: the model specification and frame (response, fixed effects, crossed participant
  and item random-effect terms), with the input checks.
- `families`: conditional likelihoods (binary logit, cumulative logit, multinomial logit).
- `laplace`: the torch core (lme4's profiled LMM criterion, the Laplace approximation).
- `model`: `fit(frame) -> GLMMFit` with estimates, SEs, variance components, diagnostics and
  prediction (seen levels conditionally, unseen ones at the population level).
- `evaluation`, `plots`: metrics, participant-grouped CV, learning curves, summary tables,
  posterior predictive checks, forest plots of fixed effects and caterpillar plots of random effects.
- `head`: `GLMMHead`, the train_glmm head over encoder features.
- `api`: CSV entry points used by `alloop glmm`.

Heavy imports (torch, matplotlib, scikit-learn) happen inside functions.
"""
