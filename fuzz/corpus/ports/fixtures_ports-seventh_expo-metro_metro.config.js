// Learn more https://docs.expo.io/guides/customizing-metro
const { getDefaultConfig } = require('expo/metro-config');

/** @type {import('expo/metro-config').MetroConfig} */
const config = getDefaultConfig(__dirname);

// Keep Metro on a fixed port so the device's dev-client bookmark keeps working.
config.server = { ...config.server, port: 3000 };
// config.server.port = 3002;

config.resolver.sourceExts.push('cjs');

module.exports = config;
