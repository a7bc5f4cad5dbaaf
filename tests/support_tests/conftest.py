"""The fixtures under test come from tests.support.fixtures, loaded by the root conftest."""
