import {
  hashCode,
  hashSecret,
  newDeviceSecret,
  newVerificationCode,
  parseBasicAuth,
  secretMatches,
} from './credentials';

const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

describe('device credentials', () => {
  it('issues a 256-bit secret and keeps only its hash', () => {
    const { password, hash } = newDeviceSecret();
    expect(Buffer.from(password, 'base64url')).toHaveLength(32);
    expect(hash.equals(hashSecret(password))).toBe(true);
    expect(hash.toString('hex')).not.toContain(Buffer.from(password).toString('hex'));
    expect(secretMatches(password, hash)).toBe(true);
    expect(secretMatches(`${password}x`, hash)).toBe(false);
  });

  it('parses "<wa_id>.<device_id>:<password>" and refuses everything else', () => {
    expect(parseBasicAuth(basic('4915100000001.2:pw:with:colons'))).toEqual({
      waId: '4915100000001',
      deviceId: 2,
      password: 'pw:with:colons',
    });
    for (const bad of [
      undefined,
      '',
      'Bearer abc',
      basic('4915100000001:pw'),
      basic('4915100000001.0:pw'),
      basic('4915100000001.128:pw'),
      basic('4915100000001.1e1:pw'),
      basic('abc.1:pw'),
      basic('4915100000001.1'),
      `Basic ${'A'.repeat(600)}`,
    ]) {
      expect(parseBasicAuth(bad)).toBeUndefined();
    }
  });

  it('makes 6-digit codes and salts their hash with the session id', () => {
    expect(newVerificationCode()).toMatch(/^\d{6}$/);
    expect(hashCode('a', '123456').equals(hashCode('b', '123456'))).toBe(false);
  });
});
