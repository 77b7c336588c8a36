"""The BTYD version's report.md and card.md: which model serves, why, and every candidate's
holdout errors and flags."""

from __future__ import annotations

from typing import Any

import pandas as pd

from sendwise.predict import report

COLUMNS = ("model", "shrinkage", "brier", "auc_buys_again", "auc_p_alive", "mae", "rmse",
           "total_predicted", "p_alive_repeat_min", "p_alive_repeat_max", "flags")  # fmt: skip


def candidate_table(meta: dict[str, Any]) -> pd.DataFrame:
    rows = pd.DataFrame(meta["selection"]["candidates"])
    rows["flags"] = [", ".join(f.split(":")[0] for f in fl) or "-" for fl in rows["flags"]]
    return rows[list(COLUMNS)]


def _params(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v:.4g}" for k, v in d["params"].items())


def why(meta: dict[str, Any]) -> str:
    sel = meta["selection"]
    if sel["chosen"] is None:
        return (
            "No candidate is usable: every fit is degenerate (flags below), so this version is"
            " not promoted and the previous one keeps serving."
        )
    m = meta["metrics"]
    crit = sel["criterion"]
    tol = sel.get("tolerance", 0.0)
    text = (
        f"**{sel['chosen']}** serves: of the candidates whose fit is not degenerate and whose"
        f" holdout {crit} is within {tol:g} of the lowest, it ranks who buys again best by"
        f" p_alive ({crit} {m[crit]:.4f}, p_alive AUC {m['auc_p_alive']:.3f}, buys-again AUC"
        f" {m['auc_buys_again']:.3f}, MAE {m['mae']:.3f})."
    )
    flagged = [c for c in sel["candidates"] if c["flags"]]
    if flagged:
        text += (
            f" {len(flagged)} candidate(s) were set aside as degenerate, for example "
            f"{flagged[0]['model']} (shrinkage {flagged[0]['shrinkage']:g}): "
            f"{flagged[0]['flags'][0]}."
        )
    if sel["refused_refits"]:
        text += " Refits refused as degenerate: " + "; ".join(sel["refused_refits"]) + "."
    return text


def btyd_report(meta: dict[str, Any], table: pd.DataFrame) -> str:
    served = meta["params"]["purchases"]
    judged = meta["judged_params"]
    gg = judged["gamma_gamma"]
    m = meta["metrics"]
    return f"""# btyd {meta["version"]}: evaluation

Every candidate was fitted on the history before {str(meta["plan"]["evaluate_at"])[:10]} and
judged on the {meta["horizon_days"]} days that follow, on the {m["customers"]:,} customers who
had ordered (the models count purchase days; the holdout counts orders). "Buys again" is at
least one order in the window; its AUC ranks customers by P(at least one purchase).

{why(meta)}

## Candidates, best first

{report.markdown_table(candidate_table(meta))}

Flags: `at_bound` a parameter at the edge of the optimiser's box, `constant_p_alive` p_alive
of repeat buyers spans less than 0.01, `not_converged`, `no_repeat_buyers`.

## The judged fit

- {judged["purchases"]["model"]}: {_params(judged["purchases"])}; log-likelihood
  {judged["purchases"]["log_likelihood"]:.1f} over {judged["purchases"]["n_customers"]:,} customers.
- Gamma-Gamma: {_params(gg) if gg else "not fitted"}.
- Expected vs actual orders per customer: MAE {m["mae"]:.3f}, RMSE {m["rmse"]:.3f},
  Spearman {m["spearman"]:.3f}; total predicted {m["total_predicted"]:,.0f} vs actual
  {m["total_actual"]:,.0f}; mean probability alive {m["mean_p_alive"]:.3f}.

## Predicted vs actual purchases in the holdout, by repeat purchases in calibration

{report.markdown_table(table)}

The version in use is refitted on the history up to {str(meta["plan"]["as_of"])[:10]}:
{served["model"]} {_params(served)}.
"""


def btyd_card(meta: dict[str, Any]) -> str:
    gate = meta["gate"]
    gate_text = "promoted" if gate["passed"] else "not promoted: " + "; ".join(gate["reasons"])
    served = meta["params"]["purchases"]
    return f"""# Model card: btyd {meta["version"]}

- **Predicts**: {meta["meaning"]} (`expected_orders`, `p_alive`, `clv_12m`).
- **Model in use**: {meta["learner"]}, {served["model"]} with {_params(served)}
  (shrinkage {served.get("shrinkage", 0.0):g}), fitted on the history up to
  {str(meta["plan"]["as_of"])[:10]}.
- **Why this model**: {why(meta)}
- **Judged**: fitted before {str(meta["plan"]["evaluate_at"])[:10]}, judged on the next
  {meta["horizon_days"]} days; {len(meta["selection"]["candidates"])} candidates.
- **Quality gate**: {gate_text}.
- **Caveats**: BTYD models know neither the season nor the catalogue; `p_alive` of a
  shrunk fit leans on its prior where the history is too short to show drop-outs.
"""
