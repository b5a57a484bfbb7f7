"""Case work leaves `accounts` for `cases` (see cases 0001): state only, no table touched."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0018_allocation_seq_required"),
        ("cases", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(
                    model_name="installment",
                    name="plan",
                ),
                migrations.RemoveField(
                    model_name="paymentplan",
                    name="approved_by",
                ),
                migrations.RemoveField(
                    model_name="paymentplan",
                    name="customer",
                ),
                migrations.RemoveField(
                    model_name="paymentplan",
                    name="invoices",
                ),
                migrations.RemoveField(
                    model_name="paymentplan",
                    name="proposed_by",
                ),
                migrations.RemoveField(
                    model_name="promisetopay",
                    name="customer",
                ),
                migrations.RemoveField(
                    model_name="promisetopay",
                    name="invoices",
                ),
                migrations.RemoveField(
                    model_name="promisetopay",
                    name="recorded_by",
                ),
                migrations.RemoveField(
                    model_name="recovery",
                    name="adjustment",
                ),
                migrations.RemoveField(
                    model_name="recovery",
                    name="customer",
                ),
                migrations.RemoveField(
                    model_name="recovery",
                    name="decided_by",
                ),
                migrations.RemoveField(
                    model_name="recovery",
                    name="invoices",
                ),
                migrations.RemoveField(
                    model_name="recovery",
                    name="proposed_by",
                ),
                migrations.RemoveField(
                    model_name="recovery",
                    name="reversed_by",
                ),
                migrations.RemoveField(
                    model_name="routingrule",
                    name="agents",
                ),
                migrations.RemoveField(
                    model_name="task",
                    name="assignee",
                ),
                migrations.RemoveField(
                    model_name="task",
                    name="completed_by",
                ),
                migrations.RemoveField(
                    model_name="task",
                    name="created_by",
                ),
                migrations.RemoveField(
                    model_name="task",
                    name="customer",
                ),
                migrations.DeleteModel(
                    name="Dispute",
                ),
                migrations.DeleteModel(
                    name="Installment",
                ),
                migrations.DeleteModel(
                    name="PaymentPlan",
                ),
                migrations.DeleteModel(
                    name="PromiseToPay",
                ),
                migrations.DeleteModel(
                    name="Recovery",
                ),
                migrations.DeleteModel(
                    name="RoutingRule",
                ),
                migrations.DeleteModel(
                    name="Task",
                ),
            ],
        ),
    ]
