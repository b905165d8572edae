"""The compiled read path: a read operation as one SQL statement that builds its JSON in
PostgreSQL, the way PostGraphile and Hasura answer, with Strawberry as the reference."""
