"""Moneypenny live chats to a Google Sheet and a Slack channel."""
