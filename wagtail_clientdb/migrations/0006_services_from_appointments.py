"""Appointments named their service as text: each distinct text becomes a service, offered by
the branches that booked it, lasting as long as its appointments mostly did."""

from collections import Counter

from django.db import migrations


def services_from_appointments(apps, schema_editor):
    Appointment = apps.get_model("wagtail_clientdb", "Appointment")
    Service = apps.get_model("wagtail_clientdb", "Service")
    durations, branches = {}, {}
    for name, branch_id, start, end in Appointment.objects.values_list("service", "branch_id", "start", "end").iterator():
        name = name.strip()[:255] or "?"
        durations.setdefault(name, Counter())[max(5, min(24 * 60, int((end - start).total_seconds() // 60)))] += 1
        branches.setdefault(name, set()).add(branch_id)
    for name, counts in durations.items():
        service = Service.objects.create(name=name, duration=counts.most_common(1)[0][0])
        service.branches.set(branches[name])
        Appointment.objects.filter(service__in=[name, f" {name}", f"{name} "]).update(service_ref=service)
    if Appointment.objects.filter(service_ref__isnull=True).exists():
        Appointment.objects.filter(service_ref__isnull=True).update(service_ref=Service.objects.get_or_create(name="?")[0])


def texts_from_services(apps, schema_editor):
    Appointment = apps.get_model("wagtail_clientdb", "Appointment")
    for appointment in Appointment.objects.select_related("service_ref").iterator():
        Appointment.objects.filter(pk=appointment.pk).update(service=appointment.service_ref.name)


class Migration(migrations.Migration):
    dependencies = [("wagtail_clientdb", "0005_services_and_opening_hours")]

    operations = [migrations.RunPython(services_from_appointments, texts_from_services)]
