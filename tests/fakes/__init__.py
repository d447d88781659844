"""Stand-ins for external services, served for real (HTTP over sockets), never mocks."""
