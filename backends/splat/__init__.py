"""3D/4D Gaussian splats: file formats, cameras, 4D slicing, edits and a reference rasterizer (torch)."""
