"""The domain core: what a training file is, its rules and vocabulary, the errors a user can
act on. Nothing here knows about HTTP, GraphQL, PostgreSQL or storage backends."""
