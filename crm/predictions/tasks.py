"""django-q2 entry points for predictions."""

from crm.predictions.milestones import milestones_check
from crm.predictions.send_times import send_times_refresh
from crm.predictions.services import calibration_run, predictions_refit

#: Daily, at night: P(active) moves with every day without an order, not by the minute.
REFIT_CRON = "30 2 * * *"
#: Weekly: how well last quarter's fit predicted the quarter that followed.
CALIBRATION_CRON = "0 4 * * 1"


def refit_predictions_task() -> str:
    """Refit the purchase models and store every contact's prediction."""
    result = predictions_refit()
    return f"{result.run.status}: {result.written} contacts, {result.churn_rises} churn rises"


def calibrate_predictions_task() -> str:
    """Check last quarter's predictions against what happened since."""
    run = calibration_run()
    error = run.results.get("total_error_percent")
    return f"{run.status}: total error {error}%" if error is not None else run.status


#: Hourly, so a deadline is noticed within the hour (and the day) it passes.
MILESTONES_EVERY_MINUTES = 60


def check_milestones_task() -> str:
    """Flag contacts who missed a milestone (once each); tasks and activities follow."""
    result = milestones_check()
    return f"{result.missed} missed across {result.rules} rules"


#: Daily: a contact's habits change over weeks, not hours.
SEND_TIMES_CRON = "0 3 * * *"


def refresh_send_times_task() -> str:
    """Recompute every engaged contact's best send hour and the audience's."""
    run = send_times_refresh()
    return f"{run.customers} contacts, audience hour {run.results['audience_hour']}"
