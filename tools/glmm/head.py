"""The GLMM head of train_glmm: encoder features, design predictors and participant/item
random effects in one Laplace-fitted mixed model.

- Encoder features (standardized) enter as fixed effects with a Gaussian prior N(0, s²) on
  their weights; s is estimated with the variance components (or fixed by `prior_sd`, or by
  `C` as s² = C, the logistic head's convention), the weights integrated out in the Laplace
  likelihood and predicted by their posterior modes.
- Design predictors are ordinary fixed effects; participants and items get random intercepts
  (`random_intercepts`) and participants random slopes on the predictors (`random_slopes`).
- Families: binary (logit), ordinal_scale (cumulative logit over the observed scale points),
  categorical / forced_choice (one binary GLMM per class, probabilities normalized).
- Prediction: rows of seen participants/items use their conditional modes; unseen ones (the
  pool) are predicted at the population level, integrating over the random-effect variance and
  the posterior variance of the feature weights (Gauss–Hermite), so a pool item's confidence
  carries the between-participant and between-item spread.

The heads registry (model/heads.py) loads this module when a GLMM head is made or read; torch
is imported inside the fitting code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, get_args

import numpy as np
from sklearn.base import BaseEstimator

from alloop.tools.errors import InputError
from alloop.tools.model.heads import check_rows, classes_present
from alloop.tools.run.schema import EffectsMode

if TYPE_CHECKING:
    from alloop.tools.model.heads import Design
    from alloop.tools.run.schema import TaskSpec


class GLMMHead(BaseEstimator):
    """fit / predict_proba / card, as every head; parameters stored as given and checked in
    `fit` (so `get_params` and `sklearn.base.clone` work), learned state in attributes ending in `_`.

    It re-estimates its variance components from all labels every round, so it has no warm
    start: train_glmm refuses the fine_tune and new_only strategies for it (`anchorable`).
    """

    name: ClassVar[str] = "glmm"
    anchorable: ClassVar[bool] = False

    def __init__(
        self,
        n_classes: int | None = None,
        random_state: int = 0,
        effects: str = "random_intercepts",
        family: str = "auto",
        task_type: str | None = None,
        prior_sd: float | None = None,
        C: float | None = None,
        correlated: bool = True,
        max_iter: int = 500,
    ) -> None:
        self.n_classes = n_classes
        self.random_state = random_state
        self.effects = effects
        self.family = family
        self.task_type = task_type
        self.prior_sd = prior_sd
        self.C = C
        self.correlated = correlated
        self.max_iter = max_iter

    @classmethod
    def from_spec(cls, spec: TaskSpec, **overrides: Any) -> GLMMHead:
        """Family from the task type, random effects from spec.model.effects."""
        params = {
            "n_classes": len(spec.labels),
            "random_state": spec.selection.seed,
            "effects": spec.model.effects,
            "task_type": spec.task_type,
        }
        return cls(**(params | overrides))

    def _check_params(self) -> None:
        if self.effects not in get_args(EffectsMode):
            raise InputError(f"effects must be one of {', '.join(get_args(EffectsMode))}, got {self.effects!r}")
        if self.family not in ("auto", "binary", "ordinal", "categorical"):
            raise InputError(f"family must be auto, binary, ordinal or categorical, got {self.family!r}")
        if self.C is not None and not self.C > 0:
            raise InputError(f"C must be a positive number, got {self.C!r}")
        # the logistic head's convention: C is the prior variance of the feature weights
        self.prior_sd_ = self.prior_sd
        if self.prior_sd is None and self.C is not None:
            self.prior_sd_ = float(np.sqrt(self.C))

    # -- fitting --------------------------------------------------------------------------
    def _family(self, k_observed: int) -> str:
        if k_observed == 2:
            return "binary"
        if self.family == "ordinal" or self.task_type == "ordinal_scale":
            return "ordinal"
        if self.family == "binary":
            raise InputError(f"family 'binary' needs two classes, the labels have {k_observed}")
        return "categorical"

    def _columns(self, n: int, design: Design | None, training: bool) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        data: dict[str, np.ndarray] = {}
        roles: dict[str, Any] = {"participant": None, "item": None, "predictors": ()}
        if design is None:
            if not training and getattr(self, "predictor_names_", ()):
                for name, mean in zip(self.predictor_names_, self.predictor_means_, strict=True):
                    data[name] = np.full(n, mean)
            return data, roles
        for role in ("participant", "item"):
            values = design.participants if role == "participant" else design.items
            if values is None:
                continue
            values = np.asarray([str(v) for v in values], dtype=object)
            if len(values) != n:
                raise InputError(f"design.{role}s has {len(values)} rows, the features {n}")
            if training and len(set(values)) < 2:
                continue  # one level: no variance to estimate, fit without that term
            data[role] = values
            roles[role] = role
        if design.predictors is not None and len(design.predictor_names):
            P = np.asarray(design.predictors, dtype=np.float64)
            if P.ndim != 2 or len(P) != n:
                raise InputError(f"design predictors have shape {P.shape}, the features {n} rows")
            for j, name in enumerate(design.predictor_names):
                data[name] = P[:, j]
            roles["predictors"] = tuple(design.predictor_names)
        elif not training and getattr(self, "predictor_names_", ()):
            for name, mean in zip(self.predictor_names_, self.predictor_means_, strict=True):
                data[name] = np.full(n, mean)
        return data, roles

    def fit(self, X: np.ndarray, y: np.ndarray, design: Design | None = None) -> GLMMHead:
        from alloop.tools.glmm.design import GLMMSpec, build_frame
        from alloop.tools.glmm.model import fit

        self._check_params()
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.int64)
        check_rows(X, y, design)
        present = classes_present(y)
        self.classes_ = present
        self.n_classes_ = int(self.n_classes or y.max() + 1)
        self.mean_ = X.mean(axis=0)
        sd = X.std(axis=0)
        self.scale_ = np.where(sd > 1e-12, sd, 1.0)
        # An isotropic prior on the weights makes the likelihood depend on the features only
        # through F F': the rank-r basis G = F V (r ≤ min(n, d)) gives the same fit, faster.
        _, sv, vt = np.linalg.svd((X - self.mean_) / self.scale_, full_matrices=False)
        keep = sv > 1e-9 * max(sv[0], 1e-300)
        self.basis_ = vt[keep].T  # d × r
        Xs = (X - self.mean_) / self.scale_ @ self.basis_

        data, roles = self._columns(len(y), design, training=True)
        self.predictor_names_ = roles["predictors"]
        self.predictor_means_ = tuple(float(np.mean(data[p])) for p in roles["predictors"])
        mode = self.effects
        if roles["participant"] is None and roles["item"] is None:
            mode = "fixed"
        elif mode == "random_slopes" and (roles["participant"] is None or not roles["predictors"]):
            mode = "random_intercepts"
        self.mode_ = mode
        self.family_ = self._family(len(present))

        def one(labels: np.ndarray, family: str, levels: list[str] | None = None) -> Any:
            spec = GLMMSpec(
                family=family,
                mode=mode,
                response="y",
                participant=roles["participant"],
                item=roles["item"],
                predictors=roles["predictors"],
                correlated=self.correlated,
            )
            cols = dict(data, y=np.asarray([str(v) for v in labels], dtype=object))
            frame = build_frame(
                cols, spec, where="training labels", levels=levels, features=Xs, feature_prior_sd=self.prior_sd_
            )
            return fit(frame, max_iter=self.max_iter, polish=False)

        if self.family_ == "binary":
            self.fits_ = [one((y == present[1]).astype(int), "binary")]
        elif self.family_ == "ordinal":
            self.fits_ = [one(y, "ordinal", levels=[str(c) for c in present])]
        else:  # one-vs-rest binary GLMMs
            self.fits_ = [one((y == c).astype(int), "binary") for c in present]
        return self

    # -- prediction -----------------------------------------------------------------------
    def predict_proba(self, X: np.ndarray, design: Design | None = None) -> np.ndarray:
        """Probabilities (n × n_classes); unseen participants/items at the population level."""
        X = np.asarray(X, dtype=np.float64)
        full = (X - self.mean_) / self.scale_
        Xs = full @ self.basis_
        # the part of a new row outside the training rows' span keeps its prior variance s²‖·‖²
        outside = np.clip((full**2).sum(axis=1) - (Xs**2).sum(axis=1), 0, None)
        data, _ = self._columns(len(X), design, training=False)

        def proba(f: Any) -> np.ndarray:
            prior_var = f.covariances[-1][0, 0]  # the features term comes last
            return f.predict_proba(data, features=Xs, posterior=True, extra_var=prior_var * outside)

        out = np.zeros((len(X), self.n_classes_))
        if self.family_ == "binary":
            p = proba(self.fits_[0])
            out[:, self.classes_[0]], out[:, self.classes_[1]] = p[:, 0], p[:, 1]
        elif self.family_ == "ordinal":
            out[:, self.classes_] = proba(self.fits_[0])
        else:
            ones = np.column_stack([proba(f)[:, 1] for f in self.fits_])
            out[:, self.classes_] = ones / ones.sum(axis=1, keepdims=True)
        return out

    def card(self) -> dict[str, Any]:
        fits = []
        for c, f in zip(self.classes_ if self.family_ == "categorical" else [None], self.fits_, strict=False):
            report = f.to_json()
            entry = {
                "fixed": {k: round(v["estimate"], 4) for k, v in report["fixed"].items()},
                "fixed_se": {k: round(v["se"], 4) for k, v in report["fixed"].items()},
                "ranef": conditional_modes(f),
                "sd": {k: round(v, 4) for k, v in report["sd"].items()},
                "cor": {k: round(v, 4) for k, v in report["cor"].items()},
                "loglik": round(report["loglik"], 3),
                "converged": report["converged"],
                "singular": report["singular"],
                "warnings": report["warnings"],
            }
            if "thresholds" in report:
                entry["thresholds"] = [round(a, 4) for a in report["thresholds"]]
                entry["threshold_se"] = [round(a, 4) for a in report["threshold_se"]]
                entry["levels"] = report["levels"]
            if c is not None:
                entry["class"] = int(c)
            fits.append(entry)
        return {
            "head": self.name,
            "family": self.family_ + (" (one-vs-rest)" if self.family_ == "categorical" else ""),
            "effects": self.mode_,
            "requested_effects": self.effects,
            "estimation": "Laplace (variance components estimated)",
            "feature_prior": "estimated" if self.prior_sd_ is None else f"fixed sd {self.prior_sd_:g}",
            "predictors": list(self.predictor_names_),
            "classes_seen": self.classes_.tolist(),
            "prediction": "population level for unseen participants/items, integrated over random effects",
            "fits": fits,
        }


def conditional_modes(fit: Any, max_levels: int = 500) -> dict[str, list[list[Any]]]:
    """The fit's sorted conditional modes (GLMMFit.sorted_modes) for the card, rounded; capped so it stays small."""
    return {
        name: [[level, round(mode, 4), round(sd, 4)] for level, mode, sd in rows]
        for name, rows in fit.sorted_modes(max_levels).items()
    }
