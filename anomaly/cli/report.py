"""Rich rendering of an evaluation report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:  # importing it loads torch: not for `anomaly --help`
    from anomaly.evaluation import MetricReport


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def report_table(report: MetricReport, title: str = "Evaluation") -> Table:
    from anomaly.painted import summary

    table = Table(title=title)
    for column in ("subset", "images", "image AUROC", "pixel AUROC", "AUPRO@0.3", "F1@thr"):
        table.add_column(column, justify="left" if column == "subset" else "right")
    table.add_row("all", str(report.n_normal + report.n_anomalous), _fmt(report.image_auroc),
                  _fmt(report.pixel_auroc), _fmt(report.aupro), _fmt(report.f1), style="bold")
    for defect, m in report.per_defect.items():
        table.add_row(f"good + {defect}", str(m["n"]), _fmt(m["image_auroc"]), _fmt(m["pixel_auroc"]),
                      _fmt(m["aupro"]), "")
    caption = [f"threshold {report.threshold:.4g} (F1-optimal {_fmt(report.f1_optimal_threshold)} "
               f"-> F1 {_fmt(report.f1_optimal)}) · {report.images_per_second:.1f} images/s end to end "
               f"· {report.seconds:.1f} s"]
    if report.false_alarm_rate is not None:
        caption.append(f"false alarms: {report.false_alarm_rate:.1%} of the {report.n_normal} normal images "
                       f"(the threshold was calibrated for {report.target_fpr:.1%})")
    caption.append(summary(report.painted, where="the normal images"))
    table.caption = "\n".join(line for line in caption if line)
    return table
