"""ecr-login: keep Amazon ECR registry logins fresh on build hosts."""

__version__ = "0.2.0"
