"""Settings by concern. Each module defines settings (upper-case names) from the environment through
xrayweb.env; xrayweb.settings assembles them, and is what DJANGO_SETTINGS_MODULE names."""
