"""Re-measure byeglasses/template.py: mean dlib 68-point landmarks of CelebA-HQ training faces."""
import numpy as np, os, sys
from PIL import Image
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
from byeglasses.pipeline.detect import detect_faces
d = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'celebahq256', 'train')
files = sorted(os.listdir(d))[::16][:1000]
pts = []
for f in files:
    im = np.asarray(Image.open(os.path.join(d, f)).convert('RGB'))
    faces = detect_faces(im)
    if len(faces) == 1:
        pts.append(faces[0].landmarks / 256.0)
pts = np.stack(pts)
print(len(files), len(pts))
mean = pts.mean(0); std = pts.std(0)
print('mean std', std.mean())

np.set_printoptions(precision=4, suppress=True)
print(repr(mean.round(4)))
