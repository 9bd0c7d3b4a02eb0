"""Draw a training map with Graphviz, and its table as in the paper (map_figure, hu2023_map)."""

import pandas as pd

from trainmap.figures import hu2023
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake):
    smk = snakemake
    edges, nodes = pd.read_csv(smk.input.edges), pd.read_csv(smk.input.nodes)
    runs = int(nodes["runs_starting"].sum())
    hu2023.training_map(
        edges,
        nodes,
        hu2023.label(smk.params.title, smk.params.scale, runs),
        smk.output.png,
        smk.output.svg,
    )
    table = hu2023.edge_figure_table(edges, smk.params.top)
    for path in smk.output[2:]:
        write_table(table, path)
