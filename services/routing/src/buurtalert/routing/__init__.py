"""buurtalert routing: chooses the groups a message reaches, from the directory."""
