"""Render synthetic defects on sample normals: `python experiments/show_synthetic.py` -> docs/img/synthetic_defects.png."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from anomaly.data import decode_image, load_samples, resize
from anomaly.synthetic import synthesize
from anomaly.training import SAMPLE_MANIFEST


def main() -> None:
    samples = [s for s in load_samples(str(SAMPLE_MANIFEST)) if s.label == 0][:8]
    images = torch.cat([resize(torch.from_numpy(decode_image(s.image, 1))[None], (128, 128)) for s in samples])
    damaged, masks = synthesize(images, generator=torch.Generator().manual_seed(0), p_defect=1.0)
    columns = [torch.cat(list(t[:, 0]), dim=0) for t in (images, damaged, masks)]
    grid = (torch.cat(columns, dim=1).numpy() * 255).round().astype(np.uint8)
    out = Path("docs/img/synthetic_defects.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(out)
    print(out)


if __name__ == "__main__":
    main()
