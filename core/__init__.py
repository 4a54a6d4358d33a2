"""Shared kernel of Stitch: settings, domain models, access tokens, errors, encoders and stores."""
