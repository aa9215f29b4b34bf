// sin (which == 0) or cos (which == 1) of x to about 1 ulp for |x| up to
// ~1e4: Cody-Waite reduction by pi/2 and minimax polynomials (cephes).
// GLSL's built-ins are only specified to 2^-11 absolute on [-pi, pi].
float precise_sincos(float x, int which) {
  precise float k = roundEven(x * 0.63661977236758134308);
  precise float r = ((x - k * 1.5703125) - k * 4.837512969970703125e-4) -
                    k * 7.54978995489188216e-8;
  int q = (int(k) + which) & 3;
  precise float z = r * r;
  precise float s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 +
                                 z * -1.9515295891e-4));
  precise float c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 +
                    z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  if (q == 0) return s;
  if (q == 1) return c;
  if (q == 2) return -s;
  return -c;
}

