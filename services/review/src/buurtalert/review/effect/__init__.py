"""Effect per district (issue 18): incidents' outcomes and the figures per district.

``outcomes.py`` gives incidents their outcome (console, API, a regiegroep reply) and
publishes it on ``incidents.outcomes``; ``rules.py`` is the pure part (who may give an
outcome, the figures); ``stores.py`` the database access; ``web.py`` the console's pages."""
