# Inputs. Only project_id has no default; sheet_id and slack_channel are required unless every
# entry of accounts names its own. terraform.tfvars.example shows them all. Every value here ends up in the function's environment or in the wiring around
# it; nothing here is a secret (the secrets are added with gcloud, see docs/deploy.md).

# -- Where ----------------------------------------------------------------------------------------

variable "project_id" {
  description = "ID of the Google Cloud project to deploy into (not its name or number)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID: 6 to 30 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region for the function, the scheduler job and the source bucket, e.g. europe-west2 (London)."
  type        = string
  default     = "europe-west2"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west2."
  }
}

variable "name" {
  description = "Base name of the function, its service accounts, secrets and scheduler job."
  type        = string
  default     = "moneypenny-sync"

  validation {
    # Service account IDs are "<name>-build" at most, and must be 6 to 30 characters.
    condition     = can(regex("^[a-z][a-z0-9-]{2,22}[a-z0-9]$", var.name))
    error_message = "name must be 4 to 24 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "labels" {
  description = "Extra labels put on every resource that takes labels."
  type        = map(string)
  default     = {}
}

# -- The sheet and Slack ------------------------------------------------------------------------

variable "sheet_id" {
  description = "ID of the Google Sheet to append chats to: the long part of its URL between /d/ and /edit. With accounts, every account's default (null when each account names its own)."
  type        = string
  default     = null

  validation {
    condition     = var.sheet_id == null || can(regex("^[A-Za-z0-9_-]{10,}$", var.sheet_id))
    error_message = "sheet_id must be the spreadsheet ID from its URL (letters, digits, - and _), not the whole URL."
  }

  validation {
    condition     = var.sheet_id != null || (length(var.accounts) > 0 && alltrue([for a in values(var.accounts) : a.sheet_id != null]))
    error_message = "sheet_id is required: set it, or give every entry of accounts its own sheet_id."
  }
}

variable "sheet_tab" {
  description = "Name of the tab (worksheet) that receives the rows."
  type        = string
  default     = "Chats"

  validation {
    condition     = length(trimspace(var.sheet_tab)) > 0 && length(var.sheet_tab) <= 100
    error_message = "sheet_tab must be a tab name of 1 to 100 characters."
  }
}

variable "slack_channel" {
  description = "Slack channel ID (e.g. C0123456789) that receives the chat summaries. Invite the bot to it. With accounts, every account's default (null when each account names its own)."
  type        = string
  default     = null

  validation {
    condition     = var.slack_channel == null || can(regex("^[A-Za-z0-9#_-]+$", var.slack_channel))
    error_message = "slack_channel must be a channel ID such as C0123456789 (or a #name)."
  }

  validation {
    condition     = var.slack_channel != null || (length(var.accounts) > 0 && alltrue([for a in values(var.accounts) : a.slack_channel != null]))
    error_message = "slack_channel is required: set it, or give every entry of accounts its own slack_channel."
  }
}

variable "slack_alert_channel" {
  description = "Slack channel ID for failure alerts. Empty: alerts go to slack_channel."
  type        = string
  default     = ""

  validation {
    condition     = var.slack_alert_channel == "" || can(regex("^[A-Za-z0-9#_-]+$", var.slack_alert_channel))
    error_message = "slack_alert_channel must be empty or a channel ID such as C0123456789."
  }
}

variable "slack_max_listed" {
  description = "Most chats listed one by one in a Slack summary; more are counted, not listed."
  type        = number
  default     = 20

  validation {
    condition     = var.slack_max_listed >= 1 && var.slack_max_listed <= 40 && floor(var.slack_max_listed) == var.slack_max_listed
    error_message = "slack_max_listed must be a whole number from 1 to 40."
  }
}

# -- Moneypenny ---------------------------------------------------------------------------------

variable "moneypenny_auth_url" {
  description = "Moneypenny token endpoint."
  type        = string
  default     = "https://api.moneypenny.com/auth/token"

  validation {
    condition     = can(regex("^https://[^/\\s]+", var.moneypenny_auth_url))
    error_message = "moneypenny_auth_url must be an https:// URL."
  }
}

variable "moneypenny_chats_url" {
  description = "Moneypenny live chat log endpoint. The integration guide prints the test host; use the host Moneypenny gave you."
  type        = string
  default     = "https://test-api.moneypenny.com/clientlivechat/V3/Log"

  validation {
    condition     = can(regex("^https://[^/\\s]+", var.moneypenny_chats_url))
    error_message = "moneypenny_chats_url must be an https:// URL."
  }
}

variable "moneypenny_calls_url" {
  description = "Moneypenny call messages endpoint (read when moneypenny_sources includes calls)."
  type        = string
  default     = "https://api.moneypenny.com/clienttas/V2/Messages"

  validation {
    condition     = can(regex("^https://[^/\\s]+", var.moneypenny_calls_url))
    error_message = "moneypenny_calls_url must be an https:// URL."
  }
}

variable "moneypenny_sources" {
  description = "The Moneypenny feeds each run reads: chats, calls, or chats,calls."
  type        = string
  default     = "chats"

  validation {
    condition     = contains(["chats", "calls", "chats,calls"], var.moneypenny_sources)
    error_message = "moneypenny_sources must be one of chats, calls, chats,calls."
  }
}

variable "calls_tab" {
  description = "Name of the tab (worksheet) that receives the call messages; another tab than sheet_tab."
  type        = string
  default     = "Calls"

  validation {
    condition     = length(trimspace(var.calls_tab)) > 0 && length(var.calls_tab) <= 100
    error_message = "calls_tab must be a tab name of 1 to 100 characters."
  }
}

variable "chat_timezone" {
  description = "IANA time zone that Moneypenny's chatTime values are in (they carry no offset)."
  type        = string
  default     = "Europe/London"

  validation {
    condition     = can(regex("^(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$", var.chat_timezone))
    error_message = "chat_timezone must be an IANA zone such as Europe/London or UTC."
  }
}

# -- Schedule -----------------------------------------------------------------------------------

variable "schedule" {
  description = "How often the sync runs: a cron expression (five fields) read in time_zone."
  type        = string
  default     = "*/5 * * * *"

  validation {
    condition     = can(regex("^[0-9*/,-]+( [0-9A-Za-z*/,?-]+){4}$", var.schedule))
    error_message = "schedule must be a five-field cron expression separated by single spaces, e.g. \"*/5 * * * *\"."
  }
}

variable "time_zone" {
  description = "IANA time zone the schedules are read in."
  type        = string
  default     = "Europe/London"

  validation {
    condition     = can(regex("^(UTC|Etc/UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$", var.time_zone))
    error_message = "time_zone must be an IANA zone such as Europe/London or UTC."
  }
}

variable "reconcile_at" {
  description = "When the daily reconcile falls due: a time of day HH:MM (24-hour) in chat_timezone. The first scheduled run after it also re-reads the last reconcile_days of chats by date. \"off\": no daily reconcile."
  type        = string
  default     = "03:15"

  validation {
    condition     = can(regex("^(([01]?[0-9]|2[0-3]):[0-5][0-9]|off)$", var.reconcile_at))
    error_message = "reconcile_at must be a time of day HH:MM on the 24-hour clock (e.g. \"03:15\"), or \"off\"."
  }
}

variable "reconcile_days" {
  description = "How many days back the daily reconcile (and ?mode=reconcile) re-reads."
  type        = number
  default     = 2

  validation {
    condition     = var.reconcile_days >= 1 && var.reconcile_days <= 31 && floor(var.reconcile_days) == var.reconcile_days
    error_message = "reconcile_days must be a whole number from 1 to 31."
  }
}

variable "scheduler_retry_count" {
  description = "How many times Cloud Scheduler retries a failed run (0 to 5), 10 s, 20 s, 40 s, then 60 s apart: well before the next 5-minute tick."
  type        = number
  default     = 3

  validation {
    condition     = var.scheduler_retry_count >= 0 && var.scheduler_retry_count <= 5 && floor(var.scheduler_retry_count) == var.scheduler_retry_count
    error_message = "scheduler_retry_count must be a whole number from 0 to 5."
  }
}

# -- The function -------------------------------------------------------------------------------

variable "python_runtime" {
  description = "Cloud Functions Python runtime."
  type        = string
  default     = "python312"

  validation {
    condition     = contains(["python311", "python312", "python313"], var.python_runtime)
    error_message = "python_runtime must be python311, python312 or python313."
  }
}

variable "function_timeout_seconds" {
  description = "Longest a single run may take before Cloud Functions stops waiting for it."
  type        = number
  default     = 300

  validation {
    # The scheduler's attempt deadline is this plus 60 s and may not exceed 30 minutes.
    condition     = var.function_timeout_seconds >= 60 && var.function_timeout_seconds <= 1740 && floor(var.function_timeout_seconds) == var.function_timeout_seconds
    error_message = "function_timeout_seconds must be a whole number from 60 to 1740."
  }
}

variable "lease_seconds" {
  description = "How long a run's lease lasts. Longer than the function timeout, so that a run that timed out but kept running still holds it."
  type        = number
  default     = 600

  validation {
    condition     = var.lease_seconds >= 60 && var.lease_seconds <= 7200 && floor(var.lease_seconds) == var.lease_seconds
    error_message = "lease_seconds must be a whole number from 60 to 7200."
  }

  validation {
    # Cloud Scheduler's longest back-off is one hour; retries wait (lease - timeout) seconds.
    condition     = var.lease_seconds > var.function_timeout_seconds && var.lease_seconds - var.function_timeout_seconds <= 3600
    error_message = "lease_seconds must be longer than function_timeout_seconds, by at most 3600."
  }
}

variable "http_timeout_seconds" {
  description = "Timeout of each HTTP call the function makes (Moneypenny, Sheets, Slack)."
  type        = number
  default     = 30

  validation {
    condition     = var.http_timeout_seconds >= 1 && var.http_timeout_seconds <= 300
    error_message = "http_timeout_seconds must be from 1 to 300."
  }

  validation {
    condition     = var.http_timeout_seconds < var.function_timeout_seconds
    error_message = "http_timeout_seconds must be shorter than function_timeout_seconds."
  }
}

variable "function_memory" {
  description = "Memory of the function instance."
  type        = string
  default     = "512M"

  validation {
    condition     = contains(["256M", "512M", "1G", "2G"], var.function_memory)
    error_message = "function_memory must be one of 256M, 512M, 1G, 2G."
  }
}

variable "ingress_settings" {
  description = "Who can reach the function's URL at all (IAM still applies). ALLOW_INTERNAL_ONLY admits Cloud Scheduler in the same project; ALLOW_ALL also lets you call it from your own machine with an identity token."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_ALL"], var.ingress_settings)
    error_message = "ingress_settings must be ALLOW_INTERNAL_ONLY or ALLOW_ALL."
  }
}

variable "retention_days" {
  description = "Days a delivered chat stays in the Firestore journal (for de-duplication) before its TTL deletes it."
  type        = number
  default     = 30

  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 3650 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days must be a whole number from 1 to 3650."
  }

  validation {
    condition     = var.retention_days >= max(var.reconcile_days, 2) + 3
    error_message = "retention_days must be at least reconcile_days + 3 and at least 5 (the days a run reads again, plus a day's margin); the function refuses a shorter RETENTION_DAYS."
  }
}

variable "alert_repeat_minutes" {
  description = "Minutes before the same failure is alerted in Slack again."
  type        = number
  default     = 60

  validation {
    condition     = var.alert_repeat_minutes >= 1 && var.alert_repeat_minutes <= 10080 && floor(var.alert_repeat_minutes) == var.alert_repeat_minutes
    error_message = "alert_repeat_minutes must be a whole number from 1 to 10080."
  }
}

variable "secret_versions" {
  description = "Secret Manager version the functions read for each secret: \"latest\" or a version number. A change deploys a new revision, which is how a rotated secret is picked up. An account's Moneypenny login: accounts = { north = { moneypenny_password = \"2\" } }."
  type = object({
    moneypenny_username  = optional(string, "latest")
    moneypenny_password  = optional(string, "latest")
    slack_bot_token      = optional(string, "latest")
    slack_signing_secret = optional(string, "latest")
    accounts = optional(map(object({
      moneypenny_username = optional(string, "latest")
      moneypenny_password = optional(string, "latest")
    })), {})
  })
  default = {}

  validation {
    condition = alltrue(concat(
      [for k, v in var.secret_versions : can(regex("^(latest|[1-9][0-9]*)$", v)) if k != "accounts"],
      flatten([for a in values(var.secret_versions.accounts) : [for v in values(a) : can(regex("^(latest|[1-9][0-9]*)$", v))]]),
    ))
    error_message = "Each secret version must be \"latest\" or a version number such as \"3\"."
  }

  validation {
    condition     = alltrue([for id in keys(var.secret_versions.accounts) : contains(keys(var.accounts), id)])
    error_message = "secret_versions.accounts names an account that accounts does not have: use the ids of accounts."
  }
}

variable "source_dir" {
  description = "Folder holding main.py, lib/ and requirements.txt. Null: the repository root (the folder above terraform/)."
  type        = string
  default     = null
}

variable "source_bucket_name" {
  description = "Name of the private bucket for the function's source archive. Null: \"<project_id>-<name>-source\"."
  type        = string
  default     = null

  validation {
    condition     = var.source_bucket_name == null || can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.source_bucket_name))
    error_message = "source_bucket_name must be a valid bucket name: 3 to 63 lowercase letters, digits, -, _ or ."
  }
}

# -- Accounts (several Moneypenny accounts in one deployment) -----------------------------------

variable "accounts" {
  description = "Moneypenny accounts, by id (1 to 30 lower-case letters, digits or hyphens): each gets its own scheduler job (?account=ID, a minute after the one before), its own Moneypenny username and password secrets, and its own settings as NAME__ID variables; a field left out takes the deployment-wide variable of the same name. Empty: one account, as before."
  type = map(object({
    sheet_id              = optional(string)
    sheet_tab             = optional(string)
    calls_tab             = optional(string)
    slack_channel         = optional(string)
    slack_alert_channel   = optional(string)
    slack_max_listed      = optional(number)
    moneypenny_sources    = optional(string)
    chat_timezone         = optional(string)
    unclaimed_reminder_at = optional(string)
    schedule              = optional(string)
    paused                = optional(bool, false)
  }))
  default = {}

  validation {
    condition     = alltrue([for id in keys(var.accounts) : can(regex("^[a-z0-9-]{1,30}$", id))])
    error_message = "Each key of accounts must be an account id of 1 to 30 lower-case letters, digits or hyphens, such as north or east-london."
  }

  validation {
    condition     = alltrue([for a in values(var.accounts) : a.sheet_id == null || can(regex("^[A-Za-z0-9_-]{10,}$", a.sheet_id))])
    error_message = "An account's sheet_id must be the spreadsheet ID from its URL (letters, digits, - and _), not the whole URL."
  }

  validation {
    condition = alltrue(flatten([for a in values(var.accounts) : [
      for c in [a.slack_channel, a.slack_alert_channel] : c == null || can(regex("^[A-Za-z0-9#_-]+$", c))
    ]]))
    error_message = "An account's slack_channel and slack_alert_channel must be channel IDs such as C0123456789."
  }

  validation {
    condition = alltrue(flatten([for a in values(var.accounts) : [
      for tab in [a.sheet_tab, a.calls_tab] : tab == null || (length(trimspace(coalesce(tab, " "))) > 0 && length(coalesce(tab, " ")) <= 100)
    ]]))
    error_message = "An account's sheet_tab and calls_tab must be tab names of 1 to 100 characters."
  }

  validation {
    condition     = alltrue([for a in values(var.accounts) : a.slack_max_listed == null || (coalesce(a.slack_max_listed, 0) >= 1 && coalesce(a.slack_max_listed, 0) <= 40 && floor(coalesce(a.slack_max_listed, 0)) == a.slack_max_listed)])
    error_message = "An account's slack_max_listed must be a whole number from 1 to 40."
  }

  validation {
    condition     = alltrue([for a in values(var.accounts) : a.moneypenny_sources == null || contains(["chats", "calls", "chats,calls"], coalesce(a.moneypenny_sources, "-"))])
    error_message = "An account's moneypenny_sources must be one of chats, calls, chats,calls."
  }

  validation {
    condition     = alltrue([for a in values(var.accounts) : a.chat_timezone == null || can(regex("^(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$", a.chat_timezone))])
    error_message = "An account's chat_timezone must be an IANA zone such as Europe/London or UTC."
  }

  validation {
    condition     = alltrue([for a in values(var.accounts) : a.unclaimed_reminder_at == null || can(regex("^(([01]?[0-9]|2[0-3]):[0-5][0-9]|off)$", a.unclaimed_reminder_at))])
    error_message = "An account's unclaimed_reminder_at must be a time of day HH:MM on the 24-hour clock (e.g. \"09:00\"), or \"off\"."
  }

  validation {
    condition     = alltrue([for a in values(var.accounts) : a.schedule == null || can(regex("^[0-9*/,-]+( [0-9A-Za-z*/,?-]+){4}$", a.schedule))])
    error_message = "An account's schedule must be a five-field cron expression separated by single spaces, e.g. \"*/5 * * * *\"."
  }
}

variable "unclaimed_reminder_at" {
  description = "When the daily reminder of unclaimed leads falls due: a time of day HH:MM (24-hour) in chat_timezone; the first scheduled run after it on a working day lists the last working day's items without an Owner. Null: off (every account's default; an account may set its own)."
  type        = string
  default     = null

  validation {
    condition     = var.unclaimed_reminder_at == null || can(regex("^(([01]?[0-9]|2[0-3]):[0-5][0-9]|off)$", var.unclaimed_reminder_at))
    error_message = "unclaimed_reminder_at must be a time of day HH:MM on the 24-hour clock (e.g. \"09:00\"), or \"off\"."
  }
}

# -- Claims from Slack (the second, public function) --------------------------------------------

variable "slack_actions_enabled" {
  description = "Deploy the second function, slack_actions: the public URL the Slack app's Claim buttons post to (verified with the app's signing secret). False: no public function, no signing secret, and SLACK_CLAIM_BUTTONS=off (no Claim buttons in Slack; claim by typing a name into Owner)."
  type        = bool
  default     = true
}

variable "slack_team_id" {
  description = "ID of the Slack workspace (T0123ABCD) whose clicks slack_actions accepts; payloads of any other workspace are refused. Required to deploy slack_actions."
  type        = string
  default     = ""

  validation {
    condition     = var.slack_team_id == "" || can(regex("^[TE][A-Z0-9]{2,30}$", var.slack_team_id))
    error_message = "slack_team_id must be a Slack workspace ID such as T0123ABCD (Slack: your workspace's name, Settings, the ID at the bottom; or the T... in app.slack.com/client/T.../)."
  }
}

variable "slack_app_id" {
  description = "ID of the Slack app (A0123ABCD, on the app's Basic Information page) whose clicks slack_actions accepts; payloads of any other app are refused. Required to deploy slack_actions."
  type        = string
  default     = ""

  validation {
    condition     = var.slack_app_id == "" || can(regex("^A[A-Z0-9]{2,30}$", var.slack_app_id))
    error_message = "slack_app_id must be a Slack app ID such as A0123ABCD (the app's Basic Information page at api.slack.com/apps)."
  }
}

variable "slack_actions_max_instances" {
  description = "Most instances of slack_actions at once: clicks are decided one at a time in Firestore, so more instances only answer a burst sooner; the cap bounds what strangers can make the public URL cost."
  type        = number
  default     = 3

  validation {
    condition     = var.slack_actions_max_instances >= 1 && var.slack_actions_max_instances <= 20 && floor(var.slack_actions_max_instances) == var.slack_actions_max_instances
    error_message = "slack_actions_max_instances must be a whole number from 1 to 20."
  }
}

variable "slack_actions_min_instances" {
  description = "Instances of slack_actions kept warm. 0 (no cost while nobody clicks): a click after a quiet spell waits for a cold start. 1 keeps one warm (billed all the time) if Slack's 3-second limit is missed."
  type        = number
  default     = 0

  validation {
    condition     = var.slack_actions_min_instances >= 0 && var.slack_actions_min_instances <= 1 && floor(var.slack_actions_min_instances) == var.slack_actions_min_instances
    error_message = "slack_actions_min_instances must be 0 or 1."
  }
}

# -- Firestore ----------------------------------------------------------------------------------

variable "create_firestore_database" {
  description = "Create the Firestore database. Set false to use an existing Native-mode database named firestore_database."
  type        = bool
  default     = true
}

variable "firestore_database" {
  description = "Firestore database ID; \"(default)\" is the project's default database."
  type        = string
  default     = "(default)"

  validation {
    condition     = var.firestore_database == "(default)" || can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.firestore_database))
    error_message = "firestore_database must be \"(default)\" or 4 to 63 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "firestore_location" {
  description = "Location of a new Firestore database (a region such as europe-west2 or a multi-region such as eur3). Null: region. Cannot change after creation."
  type        = string
  default     = null

  validation {
    condition     = var.firestore_location == null || can(regex("^[a-z]+[0-9]*(-[a-z]+[0-9]+)?$", var.firestore_location))
    error_message = "firestore_location must be a Firestore location such as europe-west2, eur3 or nam5."
  }
}

variable "firestore_deletion_protection" {
  description = "Protect the Firestore database from deletion. While true, terraform destroy leaves the database (and its data) in place."
  type        = bool
  default     = true
}

variable "firestore_collection_prefix" {
  description = "Prefix of the Firestore collections the function uses (<prefix>_journal and so on)."
  type        = string
  default     = "moneypenny_sync"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_-]{0,99}$", var.firestore_collection_prefix))
    error_message = "firestore_collection_prefix must start with a letter and hold only letters, digits, _ and - (no /, not starting with __)."
  }
}

# -- The watcher (Cloud Monitoring, outside the function) ---------------------------------------

variable "watcher_enabled" {
  description = "Create the outside watcher: a log-based metric on the function's runs and two Cloud Monitoring alert policies (no healthy run for watch_minutes; function errors). Set false if you watch the function elsewhere."
  type        = bool
  default     = true
}

variable "watch_minutes" {
  description = "Minutes without a healthy successful run before the watcher alerts. Longer than the longest gap between two scheduled runs (with an office-hours schedule, the night or the weekend)."
  type        = number
  default     = 30

  validation {
    # Cloud Monitoring takes absence windows in whole minutes, up to 24 hours.
    condition     = var.watch_minutes >= 10 && var.watch_minutes <= 1440 && floor(var.watch_minutes) == var.watch_minutes
    error_message = "watch_minutes must be a whole number from 10 to 1440."
  }
}

variable "alert_emails" {
  description = "Email addresses the watcher's alerts go to (one Cloud Monitoring email channel each)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "Each entry of alert_emails must be an email address such as sales-ops@example.com."
  }
}

variable "alert_notification_channels" {
  description = "Extra Cloud Monitoring notification channels for the watcher's alerts, by ID (projects/PROJECT/notificationChannels/NUMBER), e.g. a Slack channel added by hand in the console."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.alert_notification_channels : can(regex("^projects/[^/]+/notificationChannels/[0-9]+$", c))])
    error_message = "Each entry of alert_notification_channels must be a channel ID: projects/PROJECT/notificationChannels/NUMBER."
  }
}
