/**
 * RFC 4231 section 4, test cases 1-7 (HMAC-SHA-256): [case, key, data, expected MAC as hex].
 * Published vectors, the independent oracle for every MAC the control messages carry (our
 * trailer is the first 16 bytes, 128 bits, the truncation test case 5 publishes).
 */
const rep = (h: string, n: number) => Buffer.from(h.repeat(n), 'hex');

export const RFC4231_HMAC_SHA256: [string, Buffer, Buffer, string][] = [
  ['1', rep('0b', 20), Buffer.from('Hi There'), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
  ['2', Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
  ['3', rep('aa', 20), rep('dd', 50), '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'],
  ['4', Buffer.from('0102030405060708090a0b0c0d0e0f10111213141516171819', 'hex'), rep('cd', 50), '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b'],
  ['5', rep('0c', 20), Buffer.from('Test With Truncation'), 'a3b6167473100ee06e0c796c2955552b'],
  ['6', rep('aa', 131), Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'), '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
  [
    '7',
    rep('aa', 131),
    Buffer.from('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.'),
    '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
  ],
];
