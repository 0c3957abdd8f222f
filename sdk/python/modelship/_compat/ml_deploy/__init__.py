"""Compatibility with ml-deploy bundles: only what a UserModel imports (ml_deploy.rest.utils). Found only
when the real ml-deploy is not installed (this directory is last on sys.path)."""
