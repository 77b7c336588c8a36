"""Campaigns: definitions, audiences, experiment design (variants, holdout, sample sizes),
consent / suppression / frequency caps / quiet hours, plans, and sending through delivery."""

from sendwise.campaigns.definition import CampaignDefinition, load_definition, parse_definition
from sendwise.campaigns.design import assign, sample_size
from sendwise.campaigns.overview import campaign_status, preview_campaign
from sendwise.campaigns.service import create_campaign, plan_campaign, send_campaign

__all__ = [
    "CampaignDefinition",
    "assign",
    "campaign_status",
    "create_campaign",
    "load_definition",
    "parse_definition",
    "plan_campaign",
    "preview_campaign",
    "sample_size",
    "send_campaign",
]
