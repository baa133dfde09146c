variable "project_id" {
  description = "Google Cloud project that hosts the platform (the id, not the number)."
  type        = string
}

variable "billing_account" {
  description = "Billing account id (XXXXXX-XXXXXX-XXXXXX) the monthly budget is set on."
  type        = string
}

variable "region" {
  description = "Region for functions, Firestore, secrets, workflows and the source bucket; null takes `region` from infra/infrastructure.yaml."
  type        = string
  default     = null
}

variable "dist_dir" {
  description = "Folder holding the zips `make package` writes (<function>.zip); null means dist/ at the repository root."
  type        = string
  default     = null
}
