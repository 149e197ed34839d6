"""Checks that the tutorial notebooks are stored without outputs and keep a reduced-size switch.

These tests only read the files. Executing the notebooks is a separate, slower step, run with
`python -m pytest --nbmake tutorials`.
"""

import pathlib

import nbformat
import pytest

TUTORIALS = sorted((pathlib.Path(__file__).parents[1] / "tutorials").glob("*.ipynb"))


def test_tutorials_found():
    assert len(TUTORIALS) >= 6


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda path: path.name)
def test_notebook_has_no_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"cell {index} of {path.name} has stored outputs"
        assert cell.execution_count is None, f"cell {index} of {path.name} has an execution count"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda path: path.name)
def test_notebook_header_and_size_switch(path):
    notebook = nbformat.read(path, as_version=4)
    header_cell = notebook.cells[0]
    assert header_cell.cell_type == "markdown"
    assert header_cell.source.startswith("# ")
    assert "**Run time:**" in header_cell.source
    code_cells = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    switches = [source for source in code_cells[:4] if "FULL_SIZE = False" in source.splitlines()]
    assert switches, f"{path.name} has no `FULL_SIZE = False` line in its first code cells"
