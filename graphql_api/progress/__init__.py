"""Progress of long work on a training file, published through PostgreSQL (NOTIFY) so that a
subscriber connected to any server process sees a build running in any other."""
