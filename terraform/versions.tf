# Terraform and provider versions. `terraform init` writes the exact provider builds it picked
# to .terraform.lock.hcl; commit that file from your first init to keep later runs identical.
# The provider ranges are the releases whose schemas the offline check covers
# (scripts/tf_schema_check.py, with the bindings scripts/install-tf-tools.sh pins): move both together.
terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.43.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.8.1"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.14.2"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = merge({ app = var.name }, var.labels)
}
