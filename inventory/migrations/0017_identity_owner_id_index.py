"""An owner's identities counted from indexes alone: `(owner_id, id)` gives the ids an owner owns by an index-only
scan, which `IdentityQuerySet.count()` unions with the identities behind the owner's tools. Without it PostgreSQL
reads one heap page per few owned identities (about 1,900 pages for the owner with the most tools)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("inventory", "0016_grant_approvals_only_go_down")]

    operations = [
        migrations.AddIndex(
            model_name="serviceidentity",
            index=models.Index(fields=["owner", "id"], name="inventory_s_owner_i_eb0f66_idx"),
        ),
    ]
