"""buurtalert channels: delivers each delivery once through its channel adapter."""
