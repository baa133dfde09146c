terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}

# The Billing Budgets API refuses user credentials unless requests name a quota project, so
# every call is billed to the platform's own project.
provider "google" {
  project               = var.project_id
  region                = local.region
  billing_project       = var.project_id
  user_project_override = true
}
