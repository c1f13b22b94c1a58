# Terraform and provider versions. `terraform init` writes the exact provider builds it picked
# to .terraform.lock.hcl; commit that file from your first init to keep later runs identical.
terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = merge({ app = var.name }, var.labels)
}
