"""Storage: the shared base (:mod:`.db`), the migrations, and one repository per concept.

:class:`tutela.store.database.Store` holds the engine and the repositories
(:class:`~tutela.store.decisions.DecisionRepository`,
:class:`~tutela.store.keys.ApiKeyRepository`); areas add theirs beside them.
"""
