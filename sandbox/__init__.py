"""Development-only code: local stand-ins of Moneypenny, the Sheets API and the Slack Web API,
and the demo that runs the real function against them. Never deployed (Terraform zips only
main.py, requirements.txt and lib/)."""
