"""What an image must be to be judged: plain numbers, importing nothing, so settings can read the defaults
without loading the image libraries."""

DEFAULT_MAX_PIXELS = 40_000_000  # 40 MP: larger than any CR/DR detector, far below a bomb
MIN_SIDE = 32
MAX_ASPECT = 3.0  # a chest radiograph, even two side by side, is well within 3:1; a strip or a crop is not one
MIN_CONTRAST = 8  # grey levels between the darkest and the brightest pixel: below it there is no image to judge
