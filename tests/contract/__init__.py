"""Contract suites: what makes a TaskDB or a BlobStorageBase a beautyspot backend.

Each suite is a class of tests that needs one fixture yielding a fresh, empty backend. To run
it against a backend, subclass it in a test module and provide the fixture::

    from tests.contract.taskdb import TaskDBContract

    class TestMyTaskDB(TaskDBContract):
        @pytest.fixture
        def taskdb(self, tmp_path):
            db = MyTaskDB(...)
            yield db
            db.close()

``TaskDBContract`` / ``BlobStorageContract`` check what caching needs (the required methods);
``FullTaskDBContract`` / ``FullBlobStorageContract`` add the optional methods. The built-in
backends run the full suites (``test_builtin.py``).
"""
