# Everything named here comes from infra/infrastructure.yaml: no topic, subscription, function,
# secret or service account is named in HCL, each resource iterates over the decoded spec.
locals {
  spec = yamldecode(file("${path.module}/../infrastructure.yaml"))

  # The budget's alert thresholds are the platform's decision table (rules/), not Terraform's.
  budget_rules  = yamldecode(file("${path.module}/../../rules/budget_thresholds.yaml"))
  budget_params = local.budget_rules.params
  budget_thresholds = [
    local.budget_params.alert_ratio,
    local.budget_params.suspend_ratio,
    local.budget_params.halt_ratio,
  ]

  region    = coalesce(var.region, local.spec.region)
  dist_dir  = coalesce(var.dist_dir, "${path.module}/../../dist")
  dead      = local.spec.dead_letter
  pubsub_sa = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  topics = { for t in local.spec.topics : t.name => t }

  # Schema id = the Avro file's base name, as the local stack names it. Topics sharing a file
  # share the schema (the `...` groups them).
  schema_id = { for name, t in local.topics : name => trimsuffix(basename(t.schema), ".avsc") }
  schemas = {
    for name, t in local.topics : local.schema_id[name] => t.schema... if try(t.attach_schema, true)
  }

  subscriptions = { for s in local.spec.subscriptions : s.name => s }
  push_subscriptions = {
    for name, s in local.subscriptions : name => s if try(s.push_function, "") != ""
  }
  # Functions that receive pushes: the push identity may invoke exactly these.
  push_targets = toset([for s in local.push_subscriptions : s.push_function])

  # A subscription keeps unacknowledged messages at most 7 days; the dead-letter topic itself
  # retains dead_letter.retention, so the hold subscription can be seeked back that far.
  dead_letter_seconds = tonumber(trimsuffix(local.dead.retention, "s"))
  hold_retention      = "${min(local.dead_letter_seconds, 604800)}s"

  functions = { for f in local.spec.functions : f.name => f }
  # A function marked `public: true` in the spec is invokable by anyone (it authenticates
  # requests itself); every other one requires an IAM identity.
  public_functions = { for name, f in local.functions : name => f if try(f.public, false) }

  service_accounts = { for sa in local.spec.service_accounts : sa.name => sa }
  service_account_roles = {
    for pair in flatten([
      for sa in local.spec.service_accounts : [for role in sa.roles : { account = sa.name, role = role }]
    ]) : "${pair.account} ${pair.role}" => pair
  }

  # (account, topic) for every topic a function publishes on: its identity is a publisher of
  # that topic alone, never of the project.
  topic_publishers = {
    for pair in flatten([
      for f in local.spec.functions : [for t in try(f.publishes, []) : { account = f.service_account, topic = t }]
    ]) : "${pair.account} ${pair.topic}" => pair
  }

  # (account, secret) for every secret a function mounts or reads by name: accessor on that
  # secret alone.
  secret_accessors = {
    for pair in flatten([
      for f in local.spec.functions : [
        for s in distinct(concat([for m in try(f.secrets, []) : m.secret], try(f.reads_secrets, []))) : { account = f.service_account, secret = s }
      ]
    ]) : "${pair.account} ${pair.secret}" => pair
  }

  # The audit log's own database: the writer's identity may write it, the readers' may read
  # it, both by a grant conditioned on that database; the functions are told its name.
  audit_log = local.spec.audit_log
  audit_log_access = merge(
    { for fn in local.audit_log.readers : fn => { account = local.functions[fn].service_account, role = "roles/datastore.viewer" } },
    { (local.audit_log.writer) = { account = local.functions[local.audit_log.writer].service_account, role = "roles/datastore.user" } },
  )
  audit_log_env = { for fn, a in local.audit_log_access : fn => { WAOOAW_AUDIT_DATABASE = local.audit_log.database } }

  # Firestore roles are granted on the project; one in a service account's `roles` holds on
  # the (default) database only, by condition, so it never reaches the audit log's.
  firestore_roles = ["roles/datastore.user", "roles/datastore.viewer", "roles/datastore.owner"]

  secrets   = { for s in local.spec.secrets : s.name => s }
  workflows = { for w in local.spec.workflows : w.name => w }
  # (workflow, function) for every function a workflow is given the URL of: its identity may
  # invoke these and no other.
  workflow_invokers = {
    for pair in flatten([
      for w in local.spec.workflows : [
        for fn in distinct(values(try(w.function_urls, {}))) : { workflow = w.name, account = w.service_account, function = fn }
      ]
    ]) : "${pair.workflow} ${pair.function}" => pair
  }

  apis = toset([
    "artifactregistry.googleapis.com",
    "billingbudgets.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
    "workflows.googleapis.com",
  ])
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "api" {
  for_each = local.apis

  service            = each.key
  disable_on_destroy = false
}
