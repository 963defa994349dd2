"""The builder's server side: permissions, the JSON endpoints the page calls, the pages' content."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from tests.factories import CustomerFactory, UserFactory, make_order

pytestmark = pytest.mark.django_db


def staff_with(*codenames):
    user = UserFactory(is_superuser=False, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["automations", "platform"], codename__in=codenames)
    )
    return user


def test_pages_need_staff_and_the_view_permission(client):
    # given a staff user without automations permissions
    client.force_login(staff_with())
    # when they open the builder's pages
    responses = [client.get(f"/admin/automations/{path}") for path in ["builder/", "builder/new/", "gallery/", "runs/"]]
    # then each is forbidden
    assert [response.status_code for response in responses] == [403, 403, 403, 403]
    # and anonymous users are sent to the login page
    client.logout()
    response = client.get("/admin/automations/builder/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/automations/builder/"


def test_viewer_cannot_save(client):
    client.force_login(staff_with("view_workflow"))
    response = client.post("/admin/automations/builder/new/save/", data="{}", content_type="application/json")
    assert response.status_code == 403


def test_customer_search_finds_by_words_and_by_id(client, django_assert_num_queries):
    client.force_login(staff_with("view_workflow"))
    ada = CustomerFactory(email="ada@example.com", first_name="Ada", last_name="Lovelace")
    CustomerFactory(email="grace@example.com", first_name="Grace", last_name="Hopper")
    with django_assert_num_queries(5):  # session, user, permissions(2), customers
        by_words = client.get("/admin/automations/builder/customers/", {"q": "ada love"}).json()
    by_id = client.get("/admin/automations/builder/customers/", {"q": str(ada.pk)}).json()
    assert by_words == {"results": [{"id": ada.pk, "label": f"Ada Lovelace · ada@example.com · #{ada.pk}"}]}
    assert by_id == by_words


def test_test_subjects_lists_the_customers_latest_orders_for_an_order_trigger(client):
    client.force_login(staff_with("view_workflow"))
    customer = CustomerFactory()
    now = timezone.now()
    older = make_order(customer, total="10.00", currency="EUR", placed_at=now - timedelta(days=3))
    newer = make_order(customer, total="20.00", currency="USD", placed_at=now - timedelta(days=1))
    make_order(CustomerFactory(), total="30.00")
    body = client.get(
        "/admin/automations/builder/subjects/", {"customer": customer.pk, "trigger": "order.created"}
    ).json()
    assert body["subject"] == "order"
    assert [item["id"] for item in body["results"]] == [newer.pk, older.pk]
    assert body["results"][0]["label"].startswith(f"Order #{newer.pk} · 20.00 USD · online · ")


# --- Pages over the engine's rows ----------------------------------------------------------------

TAG_DEFINITION = {
    "schema": 1,
    "trigger": {"event": "order.created"},
    "steps": [{"id": "s1", "action": "customer.add_tags", "params": {"tags": ["Buyer"]}}],
}


def workflow_make(name="Buyers", status_active=False, user=None):
    from apps.automations.services import workflow_activate, workflow_create

    workflow = workflow_create(name=name, definition=TAG_DEFINITION, user=user)
    return workflow_activate(workflow=workflow, user=user) if status_active else workflow


def run_make(workflow, *, status, days_ago=0, customer=None, event=None, **fields):
    from apps.automations.models import WorkflowRun

    run = WorkflowRun.objects.create(
        workflow=workflow,
        version=workflow.current_version,
        customer=customer,
        trigger_event=event,
        status=status,
        **fields,
    )
    WorkflowRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return run


def test_workflow_list_counts_runs_of_the_last_7_days_by_outcome(client, django_assert_num_queries):
    client.force_login(staff_with("view_workflow"))
    buyers = workflow_make("Buyers", status_active=True)
    quiet = workflow_make("Quiet")
    for status, days_ago in [("succeeded", 1), ("succeeded", 6), ("skipped", 2), ("failed", 3), ("dead", 4)]:
        run_make(buyers, status=status, days_ago=days_ago)
    run_make(buyers, status="succeeded", days_ago=8)
    with django_assert_num_queries(6):  # session, user, permissions x2, count, workflows
        response = client.get("/admin/automations/builder/")
    rows = {row["workflow"].name: row["workflow"] for row in response.context["rows"]}
    got = {name: (w.runs_succeeded, w.runs_skipped, w.runs_failed, w.status) for name, w in rows.items()}
    assert got == {"Buyers": (2, 1, 2, "active"), "Quiet": (0, 0, 0, "draft")}
    assert rows["Quiet"].last_run_at is None
    assert b'data-workflow="%d"' % quiet.pk in response.content


def test_workflow_list_filters_by_status_and_search(client):
    client.force_login(staff_with("view_workflow"))
    workflow_make("Buyers", status_active=True)
    workflow_make("Quiet buyers")
    names = [
        row["workflow"].name for row in client.get("/admin/automations/builder/", {"status": "draft"}).context["rows"]
    ]
    assert names == ["Quiet buyers"]
    names = [row["workflow"].name for row in client.get("/admin/automations/builder/", {"q": "quiet"}).context["rows"]]
    assert names == ["Quiet buyers"]


def test_save_refuses_an_invalid_definition_with_paths_and_creates_nothing(client):
    from apps.automations.models import Workflow

    client.force_login(staff_with("view_workflow", "change_workflow"))
    definition = {
        "schema": 1,
        "trigger": {"event": "order.created"},
        "steps": [{"id": "s1", "action": "customer.add_tags", "params": {"tags": []}}],
    }
    response = client.post(
        "/admin/automations/builder/new/save/",
        data={"name": "", "definition": definition, "settings": {}},
        content_type="application/json",
    )
    assert response.status_code == 400
    paths = sorted(error["path"] for error in response.json()["errors"])
    assert paths == ["name", "steps[0].params.tags"]
    assert Workflow.objects.count() == 0


def test_save_creates_a_draft_then_activation_freezes_version_1(client):
    from apps.automations.models import Workflow

    user = staff_with("view_workflow", "change_workflow", "activate_workflow")
    client.force_login(user)
    response = client.post(
        "/admin/automations/builder/new/save/",
        data={"name": "Buyers", "definition": TAG_DEFINITION, "settings": {"max_runs_per_customer": 1}},
        content_type="application/json",
    )
    workflow = Workflow.objects.get()
    assert response.status_code == 200
    assert response.json()["redirect"] == f"/admin/automations/builder/{workflow.pk}/"
    assert (workflow.status, workflow.max_runs_per_customer, workflow.created_by) == ("draft", 1, user)
    body = client.post(f"/admin/automations/builder/{workflow.pk}/activate/").json()
    assert (body["workflow"]["status"], body["workflow"]["version"]) == ("active", 1)


def test_run_page_colours_steps_and_replays_a_dead_run(client, monkeypatch):
    from apps.automations.models import WorkflowRunStep
    from loyalty_site.lib import tasks

    client.force_login(staff_with("view_workflow", "change_workflow"))
    monkeypatch.setattr(tasks, "enqueue_on_commit", lambda *args, **kwargs: None)
    workflow = workflow_make(status_active=True)
    run = run_make(workflow, status="dead", customer=CustomerFactory(), error="Webhook answered 503", attempts=5)
    WorkflowRunStep.objects.create(run=run, step_id="s1", path="steps[0]", kind="action", status="failed", error="503")
    page = client.get(f"/admin/automations/runs/{run.pk}/")
    assert page.status_code == 200
    assert b'class="wf-run-step is-red" data-step="s1" data-status="failed"' in page.content
    assert b"Replay this run" in page.content
    response = client.post(f"/admin/automations/runs/{run.pk}/replay/")
    run.refresh_from_db()
    assert response.status_code == 302
    assert (run.status, run.attempts, run.error) == ("pending", 0, "")


def test_why_not_fired_lists_each_event_with_every_active_workflows_outcome(client):
    from apps.customers.models import DomainEvent

    client.force_login(UserFactory())
    customer = CustomerFactory()
    fired = workflow_make("Fired", status_active=True)
    skipped = workflow_make("Limited", status_active=True)
    workflow_make("Still a draft")
    order = make_order(customer, total="10.00")
    event = DomainEvent.objects.get(customer=customer, name="order.created")
    DomainEvent.objects.filter(pk=event.pk).update(status="processed")
    workflow_make("Created later", status_active=True)
    run_make(fired, status="succeeded", customer=customer, event=event)
    run_make(
        skipped, status="skipped", customer=customer, event=event, skip_reason="Run limit reached (1 per customer)"
    )
    page = client.get(f"/admin/customers/customer/{customer.pk}/change/")
    assert page.status_code == 200
    assert b'id="why-not-fired"' in page.content
    assert b'<tr data-event="%d">' % event.pk in page.content
    rows = {(item["workflow"].name, item["status"], item["reason"]) for item in _why_rows(page, event.pk)}
    assert rows == {
        ("Fired", "succeeded", ""),
        ("Limited", "skipped", "Run limit reached (1 per customer)"),
        ("Created later", "no run", "Workflow created after this event."),
    }  # drafts (and paused workflows) could not have fired: not listed
    assert order.pk


def _why_rows(page, event_pk):
    from apps.automations.templatetags.automations_why import why_rows

    customer = page.context["original"]
    return next(row["outcomes"] for row in why_rows(customer) if row["event"].pk == event_pk)


def test_old_version_opens_read_only_and_restores_as_unpublished_changes(client):
    from apps.automations.services import workflow_activate, workflow_update

    client.force_login(staff_with("view_workflow", "change_workflow"))
    workflow = workflow_make(status_active=True)
    changed = {**TAG_DEFINITION, "steps": [{"id": "s1", "action": "customer.add_tags", "params": {"tags": ["VIP"]}}]}
    workflow = workflow_activate(workflow=workflow_update(workflow=workflow, definition=changed))
    assert workflow.current_version.number == 2
    page = client.get(f"/admin/automations/builder/{workflow.pk}/versions/1/")
    boot = page.context["boot"]
    assert (boot["can_change"], boot["read_only"]) == (False, True)
    assert boot["workflow"]["definition"] == TAG_DEFINITION
    response = client.post(f"/admin/automations/builder/{workflow.pk}/versions/1/restore/")
    workflow.refresh_from_db()
    assert response.status_code == 302
    assert workflow.definition == TAG_DEFINITION
    assert (workflow.status, workflow.has_unpublished_changes, workflow.current_version.number) == ("active", True, 2)


def test_editing_an_active_workflow_shows_the_runs_waiting_on_its_version(client):
    client.force_login(staff_with("view_workflow", "change_workflow"))
    workflow = workflow_make(status_active=True)
    run_make(workflow, status="waiting", customer=CustomerFactory())
    run_make(workflow, status="waiting", customer=CustomerFactory())
    run_make(workflow, status="succeeded", customer=CustomerFactory())
    boot = client.get(f"/admin/automations/builder/{workflow.pk}/").context["boot"]
    assert (boot["workflow"]["status"], boot["workflow"]["version"], boot["workflow"]["waiting_runs"]) == (
        "active",
        1,
        2,
    )
    assert boot["can_change"] is True


def test_list_button_pauses_an_active_workflow_and_activates_it_again(client):
    client.force_login(staff_with("view_workflow", "change_workflow", "activate_workflow"))
    workflow = workflow_make(status_active=True)
    client.post(f"/admin/automations/builder/{workflow.pk}/toggle/")
    workflow.refresh_from_db()
    assert workflow.status == "paused"
    client.post(f"/admin/automations/builder/{workflow.pk}/toggle/")
    workflow.refresh_from_db()
    assert (workflow.status, workflow.current_version.number) == ("active", 1)


def test_run_history_filters_by_status_customer_and_date(client):
    client.force_login(staff_with("view_workflow"))
    workflow = workflow_make(status_active=True)
    ada = CustomerFactory(email="ada@example.com")
    grace = CustomerFactory(email="grace@example.com")
    old = run_make(workflow, status="succeeded", customer=ada, days_ago=10)
    recent = run_make(workflow, status="succeeded", customer=ada, days_ago=1)
    failed = run_make(workflow, status="failed", customer=grace, days_ago=1)

    def listed(**params):
        return [run.pk for run in client.get("/admin/automations/runs/", params).context["page_obj"]]

    assert listed(status="failed") == [failed.pk]
    assert listed(customer="ada@") == [recent.pk, old.pk]
    assert listed(customer=str(grace.pk)) == [failed.pk]
    since = (timezone.now() - timedelta(days=3)).date().isoformat()
    assert sorted(listed(since=since)) == sorted([recent.pk, failed.pk])
    assert listed(until=(timezone.now() - timedelta(days=5)).date().isoformat()) == [old.pk]


def test_run_history_is_one_query_for_any_number_of_runs(client, django_assert_num_queries):
    client.force_login(staff_with("view_workflow"))
    workflow = workflow_make(status_active=True)
    for _ in range(5):
        run_make(workflow, status="succeeded", customer=CustomerFactory())
    with django_assert_num_queries(6):  # session, user, permissions x2, count, runs with workflow/customer/version
        response = client.get("/admin/automations/runs/")
    assert len(response.context["page_obj"]) == 5


def test_a_viewer_gets_the_builder_read_only(client):
    client.force_login(staff_with("view_workflow"))
    workflow = workflow_make()
    boot = client.get(f"/admin/automations/builder/{workflow.pk}/").context["boot"]
    assert (boot["can_change"], boot["workflow"]["definition"]) == (False, TAG_DEFINITION)
    response = client.post(f"/admin/automations/builder/{workflow.pk}/activate/")
    workflow.refresh_from_db()
    assert (response.status_code, workflow.status) == (403, "draft")


STATE_TAG = {
    "schema": 1,
    "trigger": {"event": "customer.state_tag", "where": {"field": "customer.total_spent", "op": "gte", "value": 100}},
    "state": {"tag": "Big", "group": "Spend", "rank": 1},
    "steps": [],
    "left": [{"id": "l1", "action": "customer.add_tags", "params": {"tags": ["Was big"]}}],
}


def test_builder_save_of_a_state_tag_refuses_bad_parts_with_their_paths_and_creates_nothing(client):
    from apps.automations.models import Workflow

    client.force_login(staff_with("view_workflow", "change_workflow"))
    definition = {
        **STATE_TAG,
        "trigger": {"event": "customer.state_tag", "where": {"field": "order.total", "op": "gt", "value": 1}},
        "state": {"tag": " ", "group": "Spend", "rank": -2},
        "left": [{"id": "l1", "action": "customer.add_tags", "params": {"tags": []}}],
    }

    response = client.post(
        "/admin/automations/builder/new/save/",
        data={"name": "Big", "definition": definition, "settings": {}},
        content_type="application/json",
    )

    assert response.status_code == 400
    paths = sorted(error["path"] for error in response.json()["errors"])
    assert paths == ["left[0].params.tags", "state.rank", "state.tag", "trigger.where.field"]
    assert Workflow.objects.count() == 0


def test_builder_activation_of_a_state_tag_then_its_carrier_count(client, settings, django_capture_on_commit_callbacks):
    from apps.automations.models import Workflow

    settings.TASKS_SYNC = True
    make_order(CustomerFactory(), total="150.00")
    make_order(CustomerFactory(), total="50.00")
    client.force_login(staff_with("view_workflow", "change_workflow", "activate_workflow"))
    saved = client.post(
        "/admin/automations/builder/new/save/",
        data={"name": "Big", "definition": STATE_TAG, "settings": {}},
        content_type="application/json",
    ).json()
    workflow = Workflow.objects.get()
    assert saved["workflow"]["state"] == {"tag": "Big", "group": "Spend", "rank": 1, "carriers": 0}

    with django_capture_on_commit_callbacks(execute=True):  # the recompute runs in the worker after commit
        body = client.post(f"/admin/automations/builder/{workflow.pk}/activate/").json()
    polled = client.get(f"/admin/automations/builder/{workflow.pk}/state/").json()

    assert body["workflow"]["status"] == "active"
    assert polled == {"status": "active", "state": {"tag": "Big", "group": "Spend", "rank": 1, "carriers": 1}}
    assert Workflow.objects.get().definition == STATE_TAG


def test_the_carrier_count_needs_the_view_permission(client):
    from apps.automations.services import workflow_create

    workflow = workflow_create(user=None, name="Big", definition=STATE_TAG)
    client.force_login(staff_with())

    assert client.get(f"/admin/automations/builder/{workflow.pk}/state/").status_code == 403


def test_a_viewer_cannot_activate_a_state_tag(client):
    from apps.automations.models import Workflow
    from apps.automations.services import workflow_create

    workflow = workflow_create(user=None, name="Big", definition=STATE_TAG)
    client.force_login(staff_with("view_workflow", "change_workflow"))

    response = client.post(f"/admin/automations/builder/{workflow.pk}/activate/")

    assert response.status_code == 403
    assert Workflow.objects.get().status == "draft"
