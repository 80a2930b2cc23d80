"""buurtalert review: the console where moderators, coordinators and the wijkagent decide
what moderation held (``moderation.review``) and the removals it proposed
(``moderation.proposals``); every human decision goes to ``moderation.decisions``."""
