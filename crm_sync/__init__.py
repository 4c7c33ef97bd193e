"""Push what the pump models say the CRM should hold (HubSpot contacts and companies), only what
changed since HubSpot last confirmed it. Imports only the core (`onramp.*`), never Dagster."""
