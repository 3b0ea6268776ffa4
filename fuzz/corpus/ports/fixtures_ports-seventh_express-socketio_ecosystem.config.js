// pm2 start ecosystem.config.js --env production
module.exports = {
  apps: [
    {
      name: "chat-relay",
      script: "src/server.js",
      instances: 2,
      exec_mode: "cluster",
      kill_timeout: 3000,
      env_production: {
        NODE_ENV: "production",
        PORT: 3002,
        REDIS_URL: "redis://cache.internal",
      },
    },
  ],
};
