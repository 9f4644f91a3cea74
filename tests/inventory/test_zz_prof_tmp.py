import time
import pytest
from django.db import connection
from tests.inventory.test_import import generated_document
from inventory import importer

@pytest.mark.django_db
def test_prof(security, owner):
    print(connection.settings_dict["OPTIONS"])
    doc = generated_document(10_000, n_tools=2_000, owner="owner")
    for label in ("first", "second"):
        t=time.perf_counter(); importer.inventory_import(actor=security, document=doc); print(label, round(time.perf_counter()-t, 2))
